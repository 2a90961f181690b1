"""The ``neuronscope`` command: thin wrappers over the library, one module per area.

Errors from the library are printed as one line on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import NeuronscopeError
from . import atlas, attribution, basics, circuits, compare, features, featurevis, fetch, gallery, interventions, score

AREAS = (basics, featurevis, attribution, circuits, compare, atlas, features, score, interventions, gallery, fetch)
"""Each area's ``add_commands(subparsers)``, in the order ``--help`` lists the commands."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except NeuronscopeError as error:
        print(f"neuronscope: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuronscope: interrupted", file=sys.stderr)
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuronscope", description="See what a vision model has learned.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in AREAS:
        area.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
