"""The ``score`` command: a human-free two-choice interpretability score for every unit of a
layer, beside random directions of the layer, with a sheet of the best and worst units."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.resolve import resolve_source
from ..featurevis.render import RenderConfig
from ..interpretability import ScoreConfig
from ..interpretability.overview import score_overview
from .common import SOURCE_HELP, load_model, model_argument, no_progress


def add_commands(commands) -> None:
    """Add ``score`` to the CLI's subcommands."""
    defaults = ScoreConfig()
    cmd = commands.add_parser("score", help="score how interpretable each unit of a layer is (two-choice tasks judged by "
                                            "another model; 0.5 = chance), beside random directions of the layer")
    model_argument(cmd)
    cmd.add_argument("layer", metavar="LAYER", help="a layer (all its channels), e.g. blocks.4.2 or blocks.4.2.features")
    cmd.add_argument("--units", nargs="+", default=None, metavar="N", type=int, help="only these channels of the layer")
    cmd.add_argument("--source", default=None, help=SOURCE_HELP)
    cmd.add_argument("--similarity", default=None, metavar="MODEL",
                     help="the model that judges which images are alike (default: efficientnet_lite2 for Lite0 and "
                          "Lite1, else efficientnet_lite0; never the model scored)")
    cmd.add_argument("--tasks", type=int, default=defaults.tasks, help=f"tasks per unit (default {defaults.tasks})")
    cmd.add_argument("--no-baseline", action="store_true", help="do not score random directions of the layer")
    cmd.add_argument("--render", type=int, default=0, metavar="STEPS",
                     help="also render each unit once with this many steps and score its visualization (default: no)")
    cmd.add_argument("--seed", type=int, default=defaults.seed, help=f"seed of the task draws (default {defaults.seed})")
    cmd.add_argument("--other-photos", action="store_true",
                     help="draw a query's references only from other photos (source groups) than its own")
    cmd.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for scores.json and best-and-worst.png")
    no_progress(cmd)
    cmd.set_defaults(run=_score)


def _score(args: argparse.Namespace) -> None:
    config = ScoreConfig(tasks=args.tasks, similarity=args.similarity, seed=args.seed, other_groups=args.other_photos,
                         progress=not args.no_progress)
    render = RenderConfig(steps=args.render, size=128, progress=not args.no_progress) if args.render > 0 else None
    units = [f"{args.layer}:{c}" for c in args.units] if args.units else args.layer
    overview = score_overview(load_model(args), resolve_source(args.source), units, config,
                              baseline=not args.no_baseline, render=render, cache_dir=Path(args.out) / "_cache")
    sheet = overview.save(args.out)
    print(json.dumps(overview.report()))
    print(sheet)
