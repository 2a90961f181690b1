"""The feature-visualization commands: ``render``, ``render-layer``, ``accentuate`` and ``caricature``."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NeuronscopeError
from ..featurevis.accentuate import DEFAULT_CLOSENESS, accentuate
from ..featurevis.caricature import (
    CaricatureConfig,
    attributive_caricature,
    caricature,
    caricatures_across_models,
)
from ..featurevis.caricature.views import attributive_sheet
from ..featurevis.render import DEFAULT_DIVERSITY_WEIGHT, render_layer, render_units
from ..images import save_png, save_sheet
from ..manifest import write_json
from ..models import DEFAULT_MODEL
from ..names import LOGITS
from ..predict import verdicts
from .common import (
    MODEL_HELP,
    folder_path,
    image_and_model,
    load_model,
    model_argument,
    model_options,
    no_progress,
    out_png,
    parse_channels,
    png_path,
    render_config,
    render_options,
    split_list,
)


def add_commands(commands) -> None:
    """Add the feature-visualization commands to the CLI's subcommands."""
    ren = commands.add_parser("render", help="feature visualizations of units into a folder (PNGs, sheet, manifest)")
    model_argument(ren)
    ren.add_argument("units", nargs="+", metavar="UNIT", help="layer, layer:channel, layer:channel@x,y or logits:class")
    ren.add_argument("-o", "--out", required=True, help="output folder")
    render_options(ren)
    ren.add_argument("--diversity", type=int, default=1, metavar="N", help="N diverse images per unit (default 1)")
    ren.add_argument("--diversity-weight", type=float, default=DEFAULT_DIVERSITY_WEIGHT,
                     help=f"strength of the diversity term (default {DEFAULT_DIVERSITY_WEIGHT})")
    ren.set_defaults(run=_render)

    lay = commands.add_parser("render-layer", help="a contact sheet of a layer's channel visualizations")
    model_argument(lay)
    lay.add_argument("layer", metavar="LAYER", help="a layer name (see `neuronscope layers MODEL`)")
    out_png(lay, "the sheet")
    lay.add_argument("--channels", default=None, help="channels: 0:32, 3,7,9 or 5 (default: all)")
    lay.add_argument("--columns", type=int, default=8, help="images per row (default 8)")
    render_options(lay)
    lay.set_defaults(run=_render_layer)

    acc = commands.add_parser("accentuate", help="push a unit in a photo while staying close to it (sheet, image, manifest)")
    image_and_model(acc)
    acc.add_argument("unit", metavar="UNIT", help="layer:channel, layer:channel@x,y or logits:class")
    out_png(acc, "the sheet (photo | accentuated); the accentuated image is written beside it")
    acc.add_argument("--closeness", type=float, default=DEFAULT_CLOSENESS,
                     help=f"weight of staying close to the photo (default {DEFAULT_CLOSENESS}; 0: free)")
    render_options(acc)
    acc.set_defaults(run=_accentuate)

    car = commands.add_parser("caricature", help="what layers see in an image, without choosing neurons (sheet + manifest)")
    car.add_argument("image", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    car.add_argument("--model", action="append", default=None,
                     help=f"{MODEL_HELP} (default {DEFAULT_MODEL}); repeat to compare models at matched depth "
                          "(the model loading options apply to each)")
    model_options(car)
    car.add_argument("--layers", required=True, help="comma-separated layers, shallow to deep (of the first model)")
    car.add_argument("--p", type=float, default=None, help="cosine power p (default 1; 0 with --class)")
    car.add_argument("--class", dest="classes", default=None,
                     help="attributive caricatures: comma-separated classes (names or indices) or later units")
    car.add_argument("--steps", type=int, default=256, help="optimization steps (default 256)")
    car.add_argument("--size", type=int, default=None, help="image side in pixels (default: the model's input size)")
    car.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    out_png(car, "the sheet")
    no_progress(car)
    car.set_defaults(run=_caricature)


def _render(args: argparse.Namespace) -> None:
    out = folder_path(args.out)  # checked before the render, not after it
    config = render_config(args)
    model = load_model(args)
    result = render_units(model, args.units, config, samples=args.diversity, diversity=args.diversity_weight)
    paths = result.save(out)
    save_png(out / "sheet.png", result.sheet(columns=args.diversity if args.diversity > 1 else None))
    for path, label, value in zip(paths, result.labels, result.values.tolist()):
        print(f"{path}  {label}  objective {value:.3f}")
    _write_verdicts(model, out, paths, result.units)
    print(f"{out / 'sheet.png'}  ({result.timing['total_s']:.1f} s)")


def _write_verdicts(model, out: Path, paths: list[Path], units: list) -> None:
    """Beside class images, ``classification.json``: how the model classifies each PNG as a user
    opening it would (``classify`` defaults, and whole)."""
    chosen = [(path, unit.channel) for path, unit in zip(paths, units)
              if unit is not None and unit.layer == LOGITS and unit.channel is not None]
    if not chosen or model.num_classes is None:
        return
    found = verdicts(model, [str(path) for path, _ in chosen], [k for _, k in chosen])
    write_json(out / "classification.json", {"model": model.name, "view": "classify defaults (centre crop) and whole",
                                             "images": [v.to_dict() for v in found]})
    for verdict in found:
        print(f"  {Path(verdict.image).name}  {verdict.summary()}")
    right = sum(v.rank == 1 for v in found)
    print(f"{out / 'classification.json'}  ({right}/{len(found)} class images classified top-1 as their class)")


def _render_layer(args: argparse.Namespace) -> None:
    out = png_path(args.out)  # checked before the render, not after it
    config = render_config(args)
    model = load_model(args)
    info = model.layer(args.layer)
    channels = parse_channels(args.channels, info.channels)
    result = render_layer(model, info.name, channels, config)
    title = f"{model.name} {info.name}: channels {args.channels or 'all'} ({config.param}, {config.steps} steps, seed {config.seed})"
    save_sheet(out, result.sheet(columns=args.columns, title=title),
               {**result.manifest, "values": result.values.tolist(), "timing": result.timing, "warnings": result.warnings})
    print(f"{out}  ({len(channels)} channels, {result.timing['total_s']:.1f} s)")


def _accentuate(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    config = render_config(args)
    model = load_model(args)
    accent = accentuate(model, args.image, args.unit, config, closeness=args.closeness)
    image_path = save_png(out.with_name(f"{out.stem}_accentuated.png"), accent.image)
    save_sheet(out, accent.sheet(), {**accent.manifest, "image": args.image, "files": [image_path.name]})
    print(f"{accent.label}: {accent.photo_value:.3f} on the photo, {accent.value:.3f} accentuated "
          f"(rms pixel change {accent.distance:.3f})")
    print(f"{out}  {image_path}")


def _caricature(args: argparse.Namespace) -> None:
    out = png_path(args.out)
    power = args.p if args.p is not None else (0.0 if args.classes else 1.0)
    config = CaricatureConfig(steps=args.steps, size=args.size, cosine_power=power, seed=args.seed,
                              progress=not args.no_progress)
    models = [load_model(args, name) for name in (args.model or [DEFAULT_MODEL])]
    results, sheet, manifest = _caricatures(models, args, split_list(args.layers), config)
    save_sheet(out, sheet, manifest)
    for result in results:
        for label, similarity in zip(result.labels, result.similarity.tolist()):
            print(f"{label}  cos to input {similarity:.3f}")
    print(out)


def _caricatures(models: list, args: argparse.Namespace, layers: list[str], config: CaricatureConfig) -> tuple:
    """The three kinds: models compared at matched depth, attributive (``--class``), or plain."""
    if len(models) > 1:
        if args.classes:
            raise NeuronscopeError("--class works with one --model; compare models with plain caricatures")
        compared = caricatures_across_models(models, args.image, layers, config)
        return compared.results, compared.sheet(), {**compared.manifest, "image": args.image}
    if args.classes:
        targets = split_list(args.classes)
        results = [attributive_caricature(models[0], args.image, layer, targets, config) for layer in layers]
        manifest = {"kind": "attributive caricatures", "image": args.image, "runs": [r.manifest for r in results]}
        return results, attributive_sheet(results), manifest
    result = caricature(models[0], args.image, layers, config)
    return [result], result.sheet(), {**result.manifest, "image": args.image}
