"""The ``atlas`` command: an activation atlas (or a class activation atlas) of one layer."""
from __future__ import annotations

import argparse

from ..atlas import AtlasConfig, activation_atlas
from ..atlas.layout import LAYOUTS
from ..data.resolve import resolve_source
from ..images import save_sheet
from .common import (
    SOURCE_HELP,
    load_model,
    model_argument,
    no_progress,
    out_png,
    png_path,
)


def add_commands(commands) -> None:
    """Add ``atlas`` to the CLI's subcommands."""
    defaults = AtlasConfig()
    atl = commands.add_parser("atlas", help="activation atlas: feature visualizations of averaged activations, laid out by similarity")
    model_argument(atl)
    atl.add_argument("layer", metavar="LAYER", help="a layer with a spatial grid, like blocks.4.2")
    atl.add_argument("--class", dest="target", default=None, metavar="C",
                     help="a class activation atlas of this class (name or index): only samples that support it")
    atl.add_argument("--source", default=None, help=SOURCE_HELP)
    atl.add_argument("--grid", type=int, default=defaults.grid, help=f"cells per side (default {defaults.grid})")
    atl.add_argument("--threshold", type=int, default=None, help="members a cell must exceed to be drawn (default 5; 4 for a class atlas)")
    atl.add_argument("--positions", type=int, default=defaults.positions, help=f"random positions per image (default {defaults.positions})")
    atl.add_argument("--layout", default=defaults.layout, choices=LAYOUTS, help="2-D layout (default auto: t-SNE; umap needs umap-learn)")
    atl.add_argument("--whiten", action="store_true", help="optimize whitened directions (Lucid's atlas) and judge icons by the whitened cosine")
    atl.add_argument("--steps", type=int, default=defaults.steps, help=f"optimization steps per icon (default {defaults.steps})")
    atl.add_argument("--icon", type=int, default=defaults.icon, help=f"icon side in pixels (default {defaults.icon})")
    atl.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    atl.add_argument("--icons", default=None, metavar="DIR", help="also save the icons, cells.json and the manifest into this folder")
    out_png(atl, "the atlas")
    no_progress(atl)
    atl.set_defaults(run=_atlas)


def _atlas(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    config = AtlasConfig(positions=args.positions, grid=args.grid, threshold=args.threshold, layout=args.layout,
                         whiten=args.whiten, steps=args.steps, icon=args.icon, seed=args.seed,
                         progress=not args.no_progress)
    source = resolve_source(args.source)
    model = load_model(args)
    atlas = activation_atlas(model, source, args.layer, config, target=args.target)
    save_sheet(out, atlas.sheet(), atlas.manifest)
    if args.icons:
        atlas.save(args.icons)
    print(f"{len(atlas)} cells from {atlas.kept_samples} samples ({atlas.layout}); "
          f"diagonal dominance {atlas.diagonal_dominance():.2f}")
    print(out)
