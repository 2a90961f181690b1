"""The Building Blocks commands: ``attribute``, ``groups``, ``dictionary`` and ``grid``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..attribution.dictionary import activation_grid, semantic_dictionary
from ..attribution.groups import neuron_groups
from ..attribution.hidden import default_layer
from ..attribution.integrated import DEFAULT_STEPS, METHODS, attribute_by
from ..featurevis.render import RenderConfig
from ..models.model import Model
from ..predict import classify
from .common import (
    image_and_model,
    load_model,
    no_progress,
    out_png,
    png_path,
    split_list,
)

POOR_AGREEMENT = 0.8
"""Below this correlation of summed attributions with the logits, ``attribute`` warns."""


def add_commands(commands) -> None:
    """Add the Building Blocks commands to the CLI's subcommands."""
    att = commands.add_parser("attribute", help="which places of an image (at a layer) support which classes")
    image_and_model(att)
    att.add_argument("--layer", default=None, help="layer (default: the last spatial layer, act2 for Lite)")
    att.add_argument("--classes", default=None, help="comma-separated classes (names or indices); default: --top")
    att.add_argument("--top", type=int, default=3, help="attribute the model's top N classes (default 3)")
    att.add_argument("--method", default="gradient", choices=METHODS,
                     help="gradient: one-step activation x gradient (exact at the head); integrated: integrated "
                          "gradients from a zero activation, whose sums hold at any layer (default gradient)")
    att.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                     help=f"path points for --method integrated (default {DEFAULT_STEPS})")
    out_png(att)
    att.set_defaults(run=_attribute)

    grp = commands.add_parser("groups", help="a layer's activations on an image as k neuron groups (NMF)")
    image_and_model(grp)
    grp.add_argument("--layer", default="blocks.4.2", help="layer (default blocks.4.2: 14x14 positions at 224 px)")
    grp.add_argument("--k", type=int, default=6, help="number of groups (default 6)")
    grp.add_argument("--steps", type=int, default=128, help="steps for each group's feature visualization (default 128)")
    grp.add_argument("--seed", type=int, default=0, help="NMF and render seed (default 0)")
    out_png(grp)
    no_progress(grp)
    grp.set_defaults(run=_groups)

    dic = commands.add_parser("dictionary", help="the top channels at every position of a layer, as their visualizations")
    image_and_model(dic)
    dic.add_argument("--layer", default="blocks.5.1", help="layer (default blocks.5.1: 7x7 positions)")
    dic.add_argument("--top", type=int, default=4, help="channels per position (default 4)")
    dic.add_argument("--steps", type=int, default=128, help="steps per channel visualization (default 128)")
    dic.add_argument("--cache", default=str(Path.home() / ".cache" / "neuronscope" / "icons"),
                     help="folder where channel visualizations are kept for reuse")
    out_png(dic)
    no_progress(dic)
    dic.set_defaults(run=_dictionary)

    gri = commands.add_parser("grid", help="a feature visualization of every position's activation vector")
    image_and_model(gri)
    gri.add_argument("--layer", default="blocks.5.1", help="layer (default blocks.5.1: 7x7 positions)")
    gri.add_argument("--steps", type=int, default=128, help="optimization steps (default 128)")
    gri.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    out_png(gri)
    no_progress(gri)
    gri.set_defaults(run=_grid)


def _attribute(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    layer = args.layer or default_layer(model)
    targets = split_list(args.classes) if args.classes else [p.index for p in classify(model, [args.image], top=args.top)[0]]
    result, agreement = attribute_by(model, targets, args.image, layer, args.method, args.steps)
    _warn_if_poor(model, layer, agreement, args.method)
    result.save(out)
    for target, total, score in zip(result.targets, result.total.tolist(), result.scores.tolist()):
        print(f"{target}: attribution {total:+.3f} (score {score:+.3f})")
    print(out)


def _warn_if_poor(model: Model, layer: str, agreement: float, method: str) -> None:
    if agreement < POOR_AGREEMENT:
        hint = ", and --method integrated keeps the sums at any layer" if method == "gradient" else ""
        print(f"neuronscope: warning: at '{layer}' summed attributions agree poorly with the logits (correlation "
              f"{agreement:.2f} over all classes): class rankings may be wrong; '{default_layer(model)}' is exact{hint}",
              file=sys.stderr)


def _groups(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    groups = neuron_groups(model, args.image, args.layer, args.k, seed=args.seed)
    shown = groups.explain(model, RenderConfig(steps=args.steps, size=96, seed=args.seed, progress=not args.no_progress))
    shown.save(out)
    print(f"{groups.k} groups at {groups.layer}, reconstruction error {groups.error:.3f}; attribution to "
          f"{shown.top.label}: " + ", ".join(f"{v:+.2f}" for v in shown.shares))
    print(out)


def _dictionary(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    config = RenderConfig(steps=args.steps, size=64, progress=not args.no_progress)
    result = semantic_dictionary(model, args.image, args.layer, args.top, config=config, cache=args.cache)
    result.save(out)
    x, y = result.strongest_position()
    print(f"{len(result.icons)} channel visualizations; strongest position ({x},{y}): {', '.join(result.labels_at(x, y))}")
    print(out)


def _grid(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    config = RenderConfig(steps=args.steps, size=48, seed=args.seed, progress=not args.no_progress)
    grid = activation_grid(model, args.image, args.layer, config=config)
    grid.save(out)
    print(out)
