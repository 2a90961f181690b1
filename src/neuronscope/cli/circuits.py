"""The Circuits commands: ``weights``, ``mechanics`` and ``views``."""
from __future__ import annotations

import argparse

from ..circuits.decompose import MechanicsConfig, contributions, decompose
from ..circuits.expanded import expanded_weights
from ..circuits.views import objective_views
from ..errors import NeuronscopeError
from ..featurevis.render import RenderConfig
from ..models.model import Model
from ..units import parse_unit
from .common import (
    load_model,
    model_argument,
    no_progress,
    out_png,
    png_path,
)


def add_commands(commands) -> None:
    """Add the Circuits commands to the CLI's subcommands."""
    wei = commands.add_parser("weights", help="how a unit is built from an earlier layer: expanded weights of its top inputs")
    model_argument(wei)
    wei.add_argument("unit", metavar="UNIT", help="a channel, like blocks.3.2.bn2:7")
    wei.add_argument("--from", dest="source", required=True, help="an earlier layer, like blocks.3.1")
    wei.add_argument("--window", type=int, default=None, help="window side in the earlier layer (default: the smallest that holds all weights)")
    wei.add_argument("--top", type=int, default=6, help="how many input channels to show (default 6)")
    wei.add_argument("--steps", type=int, default=128, help="steps per feature visualization (default 128)")
    out_png(wei)
    no_progress(wei)
    wei.set_defaults(run=_weights)

    mec = commands.add_parser("mechanics", help="decomposed feature visualization: a unit's input pattern at an earlier layer, cell by cell")
    model_argument(mec)
    mec.add_argument("unit", metavar="UNIT", help="a channel, like blocks.4.0:17 (its neuron at the centre)")
    mec.add_argument("--from", dest="source", default=None, help="an earlier layer (default: the curated layer before the unit)")
    mec.add_argument("--image", default=None, help="also decompose what made the unit fire on this image (file or bundled photo)")
    mec.add_argument("--method", default="weights", help="weights (expanded weights, default) or optimize (optimize the earlier layer)")
    mec.add_argument("--window", type=int, default=None, help="window side in the earlier layer (default: the smallest that holds all weights)")
    mec.add_argument("--steps", type=int, default=128, help="steps per cell visualization (default 128)")
    mec.add_argument("--size", type=int, default=48, help="pixels per cell (default 48)")
    out_png(mec, "the sheet")
    no_progress(mec)
    mec.set_defaults(run=_mechanics)

    vie = commands.add_parser("views", help="a unit as a neuron, as a channel and as a cosine-weighted direction")
    model_argument(vie)
    vie.add_argument("unit", metavar="UNIT", help="a channel of a spatial layer, like blocks.4.2:6")
    vie.add_argument("--steps", type=int, default=256, help="optimization steps (default 256)")
    out_png(vie, "the sheet")
    no_progress(vie)
    vie.set_defaults(run=_views)


def _weights(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    unit = _one_channel(model, args.unit)
    weights = expanded_weights(model, unit, args.source, window=args.window)
    shown = weights.explain(model, top=args.top, config=RenderConfig(steps=args.steps, size=64, progress=not args.no_progress))
    shown.save(out)
    for channel, value in shown.inputs:
        print(f"{weights.source}:{channel}  {value:+.4f}")
    print(out)


def _one_channel(model: Model, text: str) -> str:
    """``text`` as one channel of a layer (``layer:c``, no position), canonically written."""
    unit = parse_unit(model, text)
    if unit.channel is None or unit.position is not None:
        raise NeuronscopeError(f"give one channel as the unit, like {unit.layer}:0 (got '{text}')")
    return str(unit)


def _mechanics(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    config = MechanicsConfig(method=args.method, window=args.window,
                             render=RenderConfig(steps=args.steps, size=args.size, progress=not args.no_progress))
    parts = decompose(model, args.unit, args.source, config)
    explained = contributions(model, parts.unit, args.image, parts.source) if args.image else None
    parts.save(out, explained.explain(model, config) if explained is not None else None)
    y, x = divmod(int(parts.magnitudes.argmax()), parts.magnitudes.shape[1])
    print(f"{parts.unit} from {parts.source}: {len(parts.vectors)}x{len(parts.vectors)} window ({parts.method}), strongest cell ({x},{y})")
    if explained is not None:
        print(f"on {args.image} at {explained.unit}: bias {explained.bias:.3f} + contributions "
              f"{float(explained.values.sum()):.3f} = linearized {explained.linearized:.3f} (actual {explained.actual:.3f})")
    print(out)


def _views(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    model = load_model(args)
    views = objective_views(model, args.unit, RenderConfig(steps=args.steps, progress=not args.no_progress))
    views.save(out)
    print(out)
