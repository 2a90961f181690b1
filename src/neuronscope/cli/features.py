"""The ``features`` command: learn a dictionary of features at one layer, report its quality and
draw its most frequent features (visualization beside dataset examples)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.resolve import resolve_source, training_extra
from ..dictionaries import DictionaryConfig
from ..dictionaries.config import DEFAULT_K, DENSE, KINDS
from ..dictionaries.overview import feature_overview
from ..featurevis.render import RenderConfig
from .common import SOURCE_HELP, load_model, model_argument, no_progress


def add_commands(commands) -> None:
    """Add ``features`` to the CLI's subcommands."""
    defaults = DictionaryConfig()
    cmd = commands.add_parser("features", help="learn a dictionary of features (TopK sparse autoencoder or NMF) at a layer; "
                                               "report its quality and draw its features")
    model_argument(cmd)
    cmd.add_argument("layer", metavar="LAYER", help="a layer with a spatial grid, like blocks.4.2")
    cmd.add_argument("--source", default=None, help=SOURCE_HELP)
    cmd.add_argument("--also-train-on", default=None, metavar="S",
                     help="more images for training only, never held out: a folder, a .txt list, tar shards, 'extra' (the "
                          "other images inside scikit-image) or 'none' (default: extra with the bundled photos, else none)")
    cmd.add_argument("--size", type=int, default=None, metavar="N",
                     help=f"features in the dictionary (default {defaults.expansion} x the layer's channels; NMF: channels)")
    cmd.add_argument("--k", type=int, default=None, help=f"active features per position (TopK; default {DEFAULT_K}, at most half the layer's channels)")
    cmd.add_argument("--kind", default=defaults.kind, choices=KINDS, help=f"dictionary kind (default {defaults.kind})")
    cmd.add_argument("--epochs", type=int, default=defaults.epochs, help=f"training epochs (TopK; default {defaults.epochs})")
    cmd.add_argument("--show", type=int, default=8,
                     help=f"features drawn: the most frequent of those active at most at {100 * DENSE:.0f} %% of the positions (default 8)")
    cmd.add_argument("--steps", type=int, default=256, help="optimization steps per feature visualization (default 256)")
    cmd.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    cmd.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for dictionary.npz, report.json and features.png")
    no_progress(cmd)
    cmd.set_defaults(run=_features)


def _features(args: argparse.Namespace) -> None:
    config = DictionaryConfig(kind=args.kind, features=args.size, k=args.k, epochs=args.epochs, seed=args.seed,
                              progress=not args.no_progress)
    render = RenderConfig(steps=args.steps, seed=args.seed, progress=not args.no_progress)
    source = resolve_source(args.source)
    overview = feature_overview(load_model(args), source, args.layer, config, show=args.show, render=render,
                                also_train_on=training_extra(args.also_train_on, args.source),
                                cache_dir=Path(args.out) / "_cache")
    sheet = overview.save(args.out)
    print(json.dumps(overview.report()))
    print(sheet)
