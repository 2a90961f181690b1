"""The ``fetch`` command: the one explicit download of zoo weights that no wheel ships."""
from __future__ import annotations

import argparse

from ..models.fetch import fetch, fetchable, weights_home
from ..models.weights import sha256_of


def add_commands(commands) -> None:
    """Add ``fetch`` to the CLI's subcommands."""
    cmd = commands.add_parser("fetch", help="download a zoo model's weights (the only command that downloads)")
    cmd.add_argument("model", metavar="MODEL", help=f"the model whose weights to download: {', '.join(fetchable())}")
    cmd.add_argument("--url", default=None, help="download from this URL instead of the known one (http(s):// or file://)")
    cmd.add_argument("--out", default=None, metavar="FILE",
                     help=f"write the weights here instead of {weights_home()}/MODEL.pth (then pass --weights FILE)")
    cmd.set_defaults(run=_fetch)


def _fetch(args: argparse.Namespace) -> None:
    path = fetch(args.model, url=args.url, dest=args.out)
    print(f"{args.model}: weights verified and installed at {path} (sha256 {sha256_of(path)})")
