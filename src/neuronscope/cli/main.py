"""The ``neuronscope`` command: thin wrappers over the library.

Errors from the library are printed as one line on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ..attribution.dictionary import activation_grid, semantic_dictionary
from ..attribution.groups import neuron_groups
from ..attribution.hidden import (
    attribute,
    attribute_all_classes,
    default_layer,
    logit_agreement,
)
from ..circuits.decompose import (
    MechanicsConfig,
    contributions,
    decompose,
    decomposition_sheet,
)
from ..circuits.weights import expanded_weights, objective_views
from ..data.photos import PHOTOS
from ..errors import NeuronscopeError
from ..featurevis import objectives
from ..featurevis.caricature import (
    CaricatureConfig,
    attributive_caricature,
    caricature,
    compare_models,
)
from ..featurevis.param import PARAMS
from ..featurevis.render import (
    DEFAULT_DIVERSITY_WEIGHT,
    RenderConfig,
    render,
    render_layer,
    render_units,
)
from ..featurevis.transforms import PRESETS
from ..images import contact_sheet, diverging, heat_overlay, save_png
from ..manifest import build_manifest, write_json
from ..models import DEFAULT_MODEL, LOGITS, load
from ..models.zoo import ZOO
from ..predict import classify
from ..readout import read_units
from ..units import parse_target, parse_unit
from .gallery import add_commands as add_gallery_commands


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

    models = commands.add_parser("models", help="list the models of the offline zoo")
    models.set_defaults(run=_models)

    layers = commands.add_parser("layers", help="list a model's layers: name, kind, channels, spatial size")
    layers.add_argument("model", metavar="MODEL", help=f"a zoo model, e.g. {DEFAULT_MODEL}")
    layers.add_argument("--all", action="store_true", help="every capturable module, not just the curated layers")
    layers.set_defaults(run=_layers)

    photos = commands.add_parser("photos", help="list the bundled photos usable wherever an image is expected")
    photos.set_defaults(run=_photos)

    cls = commands.add_parser("classify", help="top classes for images (paths or bundled photo names)")
    cls.add_argument("images", nargs="+", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    cls.add_argument("--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    cls.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    cls.set_defaults(run=_classify)

    act = commands.add_parser("activations", help="how strongly units respond to an image")
    _image_and_model(act)
    act.add_argument("units", nargs="+", metavar="UNIT", help="layer, layer:channel, layer:channel@x,y or logits:class")
    act.set_defaults(run=_activations)

    ren = commands.add_parser("render", help="feature visualizations of units into a folder (PNGs, sheet, manifest)")
    ren.add_argument("model", metavar="MODEL", help=f"a zoo model, e.g. {DEFAULT_MODEL}")
    ren.add_argument("units", nargs="+", metavar="UNIT", help="layer, layer:channel, layer:channel@x,y or logits:class")
    ren.add_argument("-o", "--out", required=True, help="output folder")
    _render_options(ren)
    ren.add_argument("--diversity", type=int, default=1, metavar="N", help="N diverse images per unit (default 1)")
    ren.add_argument("--diversity-weight", type=float, default=DEFAULT_DIVERSITY_WEIGHT,
                     help=f"strength of the diversity term (default {DEFAULT_DIVERSITY_WEIGHT})")
    ren.set_defaults(run=_render)

    lay = commands.add_parser("render-layer", help="a contact sheet of a layer's channel visualizations")
    lay.add_argument("model", metavar="MODEL", help=f"a zoo model, e.g. {DEFAULT_MODEL}")
    lay.add_argument("layer", metavar="LAYER", help="a layer name (see `neuronscope layers MODEL`)")
    _out_png(lay, "the sheet")
    lay.add_argument("--channels", default=None, help="channels: 0:32, 3,7,9 or 5 (default: all)")
    lay.add_argument("--columns", type=int, default=8, help="images per row (default 8)")
    _render_options(lay)
    lay.set_defaults(run=_render_layer)

    car = commands.add_parser("caricature", help="what layers see in an image, without choosing neurons (sheet + manifest)")
    car.add_argument("image", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    car.add_argument("--model", action="append", default=None,
                     help=f"zoo model (default {DEFAULT_MODEL}); repeat to compare models at matched depth")
    car.add_argument("--layers", required=True, help="comma-separated layers, shallow to deep (of the first model)")
    car.add_argument("--p", type=float, default=None, help="cosine power p (default 1; 0 with --class)")
    car.add_argument("--class", dest="classes", default=None,
                     help="attributive caricatures: comma-separated classes (names or indices) or later units")
    car.add_argument("--steps", type=int, default=256, help="optimization steps (default 256)")
    car.add_argument("--size", type=int, default=None, help="image side in pixels (default: the model's input size)")
    car.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _out_png(car, "the sheet")
    _no_progress(car)
    car.set_defaults(run=_caricature)

    att = commands.add_parser("attribute", help="which places of an image (at a layer) support which classes")
    _image_and_model(att)
    att.add_argument("--layer", default=None, help="layer (default: the last spatial layer, act2 for Lite)")
    att.add_argument("--classes", default=None, help="comma-separated classes (names or indices); default: --top")
    att.add_argument("--top", type=int, default=3, help="attribute the model's top N classes (default 3)")
    _out_png(att)
    att.set_defaults(run=_attribute)

    grp = commands.add_parser("groups", help="a layer's activations on an image as k neuron groups (NMF)")
    _image_and_model(grp)
    grp.add_argument("--layer", default="blocks.4.2", help="layer (default blocks.4.2: 14x14 positions at 224 px)")
    grp.add_argument("--k", type=int, default=6, help="number of groups (default 6)")
    grp.add_argument("--steps", type=int, default=128, help="steps for each group's feature visualization (default 128)")
    grp.add_argument("--seed", type=int, default=0, help="NMF and render seed (default 0)")
    _out_png(grp)
    _no_progress(grp)
    grp.set_defaults(run=_groups)

    dic = commands.add_parser("dictionary", help="the top channels at every position of a layer, as their visualizations")
    _image_and_model(dic)
    dic.add_argument("--layer", default="blocks.5.1", help="layer (default blocks.5.1: 7x7 positions)")
    dic.add_argument("--top", type=int, default=4, help="channels per position (default 4)")
    dic.add_argument("--steps", type=int, default=128, help="steps per channel visualization (default 128)")
    dic.add_argument("--cache", default=str(Path.home() / ".cache" / "neuronscope" / "icons"),
                     help="folder where channel visualizations are kept for reuse")
    _out_png(dic)
    _no_progress(dic)
    dic.set_defaults(run=_dictionary)

    gri = commands.add_parser("grid", help="a feature visualization of every position's activation vector")
    _image_and_model(gri)
    gri.add_argument("--layer", default="blocks.5.1", help="layer (default blocks.5.1: 7x7 positions)")
    gri.add_argument("--steps", type=int, default=128, help="optimization steps (default 128)")
    gri.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _out_png(gri)
    _no_progress(gri)
    gri.set_defaults(run=_grid)

    wei = commands.add_parser("weights", help="how a unit is built from an earlier layer: expanded weights of its top inputs")
    wei.add_argument("model", metavar="MODEL", help=f"a zoo model, e.g. {DEFAULT_MODEL}")
    wei.add_argument("unit", metavar="UNIT", help="a channel, like blocks.3.2.bn2:7")
    wei.add_argument("--from", dest="source", required=True, help="an earlier layer, like blocks.3.1")
    wei.add_argument("--window", type=int, default=None, help="window side in the earlier layer (default: the smallest that holds all weights)")
    wei.add_argument("--top", type=int, default=6, help="how many input channels to show (default 6)")
    wei.add_argument("--steps", type=int, default=128, help="steps per feature visualization (default 128)")
    _out_png(wei)
    _no_progress(wei)
    wei.set_defaults(run=_weights)

    mec = commands.add_parser("mechanics", help="decomposed feature visualization: a unit's input pattern at an earlier layer, cell by cell")
    mec.add_argument("model", metavar="MODEL", help=f"a zoo model, e.g. {DEFAULT_MODEL}")
    mec.add_argument("unit", metavar="UNIT", help="a channel, like blocks.4.0:17 (its neuron at the centre)")
    mec.add_argument("--from", dest="source", default=None, help="an earlier layer (default: the curated layer before the unit)")
    mec.add_argument("--image", default=None, help="also decompose what made the unit fire on this image (file or bundled photo)")
    mec.add_argument("--method", default="weights", help="weights (expanded weights, default) or optimize (optimize the earlier layer)")
    mec.add_argument("--window", type=int, default=None, help="window side in the earlier layer (default: the smallest that holds all weights)")
    mec.add_argument("--steps", type=int, default=128, help="steps per cell visualization (default 128)")
    mec.add_argument("--size", type=int, default=48, help="pixels per cell (default 48)")
    _out_png(mec, "the sheet")
    _no_progress(mec)
    mec.set_defaults(run=_mechanics)

    vie = commands.add_parser("views", help="a unit as a neuron, as a channel and as a cosine-weighted direction")
    vie.add_argument("model", metavar="MODEL", help=f"a zoo model, e.g. {DEFAULT_MODEL}")
    vie.add_argument("unit", metavar="UNIT", help="a channel of a spatial layer, like blocks.4.2:6")
    vie.add_argument("--steps", type=int, default=256, help="optimization steps (default 256)")
    _out_png(vie, "the sheet")
    _no_progress(vie)
    vie.set_defaults(run=_views)

    add_gallery_commands(commands)
    return parser


def _image_and_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")


def _out_png(parser: argparse.ArgumentParser, what: str = "the picture") -> None:
    parser.add_argument("-o", "--out", required=True, help=f"{what} to write (.png); a manifest is written beside it")


def _no_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _render_options(parser: argparse.ArgumentParser) -> None:
    defaults = RenderConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimization steps (default {defaults.steps})")
    parser.add_argument("--size", type=int, default=defaults.size, help=f"image side in pixels (default {defaults.size})")
    parser.add_argument("--param", default=defaults.param, help=f"parameterization: {', '.join(PARAMS)} (default {defaults.param})")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 0.05; 1.0 for maco)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    parser.add_argument("--transforms", default="lucid", help=f"transform preset: {', '.join(PRESETS)} (default lucid)")
    _no_progress(parser)


def _config(args: argparse.Namespace) -> RenderConfig:
    return RenderConfig(steps=args.steps, size=args.size, param=args.param, lr=args.lr, seed=args.seed,
                        transforms=args.transforms, progress=not args.no_progress)


def _models(args: argparse.Namespace) -> None:
    width = max(len(name) for name in ZOO)
    for name, entry in ZOO.items():
        default = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name:<{width}}  {entry.description}{default}")


def _layers(args: argparse.Namespace) -> None:
    model = load(args.model)
    rows = model.all_layers() if args.all else model.layers
    size = "x".join(map(str, model.input_size))
    print(f"{model.name}: input {model.input_channels}x{size}, {len(rows)} layers" + ("" if args.all else " (curated; --all for every module)"))
    table = [("layer", "kind", "channels", "spatial (HxW)")]
    for info in rows:
        spatial = "x".join(map(str, info.spatial)) if info.spatial else "-"
        table.append((info.name, info.kind, str(info.channels), spatial))
    _print_table(table, right=(2,))


def _photos(args: argparse.Namespace) -> None:
    table = [("name", "shows", "licence", "from")]
    table += [(p.name, p.shows, p.licence, p.package) for p in PHOTOS.values()]
    _print_table(table)


def _classify(args: argparse.Namespace) -> None:
    model = load(args.model)
    results = classify(model, args.images, top=args.top)
    for image, predictions in zip(args.images, results):
        print(f"{image}  ({model.name})")
        table = [("rank", "label", "class", "probability")]
        table += [(str(r), p.label, str(p.index), f"{p.probability:.4f}") for r, p in enumerate(predictions, 1)]
        _print_table(table, right=(0, 2, 3), indent="  ")


def _activations(args: argparse.Namespace) -> None:
    model = load(args.model)
    table = [("unit", "mean", "max", "at (x,y)")]
    for reading in read_units(model, args.image, args.units):
        at = f"{reading.argmax[0]},{reading.argmax[1]}" if reading.argmax else "-"
        table.append((str(reading.unit), f"{reading.mean:.4f}", f"{reading.max:.4f}", at))
    print(f"{args.image}  ({model.name})")
    _print_table(table, right=(1, 2), indent="  ")


def _render(args: argparse.Namespace) -> None:
    config = _config(args)
    model = load(args.model)
    result = render_units(model, args.units, config, samples=args.diversity, diversity=args.diversity_weight)
    out = Path(args.out)
    paths = result.save(out)
    save_png(out / "sheet.png", result.sheet(columns=args.diversity if args.diversity > 1 else None))
    for path, label, value in zip(paths, result.labels, result.values.tolist()):
        print(f"{path}  {label}  objective {value:.3f}")
    print(f"{out / 'sheet.png'}  ({result.timing['total_s']:.1f} s)")


def _render_layer(args: argparse.Namespace) -> None:
    out = _png(args.out)  # checked before the render, not after it
    config = _config(args)
    model = load(args.model)
    info = model.layer(args.layer)
    channels = parse_channels(args.channels, info.channels)
    result = render_layer(model, info.name, channels, config)
    title = f"{model.name} {info.name}: channels {args.channels or 'all'} ({config.param}, {config.steps} steps, seed {config.seed})"
    save_png(out, result.sheet(columns=args.columns, title=title))
    write_json(out.with_suffix(".json"), {**result.manifest, "values": result.values.tolist(), "timing": result.timing,
                                          "warnings": result.warnings})
    print(f"{out}  ({len(channels)} channels, {result.timing['total_s']:.1f} s)")


def _caricature(args: argparse.Namespace) -> None:
    out = _png(args.out)
    layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    power = args.p if args.p is not None else (0.0 if args.classes else 1.0)
    config = CaricatureConfig(steps=args.steps, size=args.size, cosine_power=power, seed=args.seed,
                              progress=not args.no_progress)
    models = [load(name) for name in (args.model or [DEFAULT_MODEL])]
    if len(models) > 1:
        if args.classes:
            raise NeuronscopeError("--class works with one --model; compare models with plain caricatures")
        results, sheet = compare_models(models, args.image, layers, config)
        manifest = {"kind": "caricature comparison", "image": args.image, "runs": [r.manifest for r in results]}
    elif args.classes:
        targets = [t.strip() for t in args.classes.split(",") if t.strip()]
        results = [attributive_caricature(models[0], args.image, layer, targets, config) for layer in layers]
        images = [results[0].reference] + [im for r in results for im in r.images]
        captions = ["input"] + [label for r in results for label in r.labels]
        sheet = contact_sheet(images, captions, columns=len(targets) * len(layers) + 1)
        manifest = {"kind": "attributive caricatures", "image": args.image, "runs": [r.manifest for r in results]}
    else:
        result = caricature(models[0], args.image, layers, config)
        sheet, manifest, results = result.sheet(), {**result.manifest, "image": args.image}, [result]
    save_png(out, sheet)
    write_json(out.with_suffix(".json"), manifest)
    for result in results:
        for label, similarity in zip(result.labels, result.similarity.tolist()):
            print(f"{label}  cos to input {similarity:.3f}")
    print(out)


def _attribute(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    layer = args.layer or default_layer(model)
    if args.classes:
        targets = [t.strip() for t in args.classes.split(",") if t.strip()]
    else:
        targets = [p.index for p in classify(model, [args.image], top=args.top)[0]]
    everything = attribute_all_classes(model, args.image, layer)
    agreement = logit_agreement(everything)
    if agreement < 0.8:
        print(f"neuronscope: warning: at '{layer}' summed attributions agree poorly with the logits (correlation "
              f"{agreement:.2f} over all classes): class rankings may be wrong; '{default_layer(model)}' is exact",
              file=sys.stderr)
    units = [parse_target(t, model) for t in targets]
    if all(unit.layer == LOGITS for unit in units):  # classes: already in the all-classes pass
        result = everything.select([unit.channel for unit in units])
    else:
        result = attribute(model, args.image, layer, targets)
    pictures = [result.image] + [heat_overlay(result.image, m) for m in result.spatial]
    captions = ["input"] + [f"{t} ({v:+.2f})" for t, v in zip(result.targets, result.total.tolist())]
    save_png(out, contact_sheet(pictures, captions, columns=len(pictures), title=f"{model.name} {layer}: attribution"))
    write_json(out.with_suffix(".json"), build_manifest(
        "attribution", model=model.name, image=args.image, layer=layer, targets=result.targets,
        totals=result.total.tolist(), scores=result.scores.tolist(), logit_agreement=agreement))
    for target, total, score in zip(result.targets, result.total.tolist(), result.scores.tolist()):
        print(f"{target}: attribution {total:+.3f} (score {score:+.3f})")
    print(out)


def _groups(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    groups = neuron_groups(model, args.image, args.layer, args.k, seed=args.seed)
    objective = sum(objectives.direction(groups.layer, torch.from_numpy(d).float(), batch=g)
                    for g, d in enumerate(groups.directions))
    icons = render(model, objective, RenderConfig(steps=args.steps, size=96, seed=args.seed, progress=not args.no_progress),
                   batch=groups.k)
    top = classify(model, [args.image], top=1)[0][0]
    gradients = attribute(model, groups.image[None], groups.layer, [top.index]).gradients
    shares = groups.attribution(gradients)[0]  # each group's attribution to the top class
    maps = [heat_overlay(groups.image, torch.from_numpy(m), c) for m, c in zip(groups.maps, groups.colors())]
    blank = torch.ones_like(groups.image)
    pictures = [groups.image, groups.overlay(), *maps, blank, blank, *icons.images]
    captions = ["input", f"{groups.k} groups", *[f"group {g}: {v:+.2f} {top.label}" for g, v in enumerate(shares)],
                "", "", *[f"group {g} direction" for g in range(groups.k)]]
    columns = groups.k + 2
    save_png(out, contact_sheet(pictures, captions, columns=columns,
                                title=f"{model.name} {groups.layer}: {groups.k} neuron groups (error {groups.error:.2f})"))
    write_json(out.with_suffix(".json"), build_manifest(
        "neuron groups", model=model.name, image=args.image, layer=groups.layer, k=groups.k, seed=args.seed,
        reconstruction_error=groups.error, top_class=top.label, attribution_to_top_class=shares.tolist(),
        icons=icons.manifest))
    print(f"{groups.k} groups at {groups.layer}, reconstruction error {groups.error:.3f}; attribution to {top.label}: "
          + ", ".join(f"{v:+.2f}" for v in shares))
    print(out)


def _dictionary(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    config = RenderConfig(steps=args.steps, size=64, progress=not args.no_progress)
    result = semantic_dictionary(model, args.image, args.layer, args.top, config=config, cache=args.cache)
    x, y = result.strongest_position()
    strongest = [result.icons[int(c)] for c in result.channels[y, x]]
    labels = [f"{result.layer}:{int(c)} ({v:.2f})" for c, v in zip(result.channels[y, x], result.values[y, x])]
    mosaic = result.mosaic()
    side = mosaic.height
    sheet = contact_sheet([result.image, mosaic, *strongest],
                          ["input", f"top channel per position of {result.layer}", *[f"@{x},{y}: {t}" for t in labels]],
                          columns=2 + len(strongest), cell=side)
    save_png(out, sheet)
    write_json(out.with_suffix(".json"), build_manifest(
        "semantic dictionary", model=model.name, image=args.image, layer=result.layer, top=args.top,
        channels=result.channels.tolist(), values=result.values.round(4).tolist(), render=config))
    print(f"{len(result.icons)} channel visualizations; strongest position ({x},{y}): {', '.join(labels)}")
    print(out)


def _grid(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    config = RenderConfig(steps=args.steps, size=48, seed=args.seed, progress=not args.no_progress)
    grid = activation_grid(model, args.image, args.layer, config=config)
    picture = grid.picture()
    save_png(out, contact_sheet([grid.image, picture], ["input", f"activation grid of {grid.layer}"], columns=2,
                                cell=picture.height))
    write_json(out.with_suffix(".json"), build_manifest(
        "activation grid", model=model.name, image=args.image, layer=grid.layer, render=config,
        magnitudes=grid.magnitudes.tolist()))
    print(out)


def _weights(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    unit = parse_unit(args.unit, model)
    if unit.channel is None or unit.position is not None:
        raise NeuronscopeError(f"give one channel as the unit, like {unit.layer}:0 (got '{args.unit}')")
    weights = expanded_weights(model, args.source, str(unit), window=args.window)
    top = weights.top_inputs(0, args.top)
    config = RenderConfig(steps=args.steps, size=64, progress=not args.no_progress)
    icons = render_units(model, [str(unit), *[f"{weights.source}:{i}" for i, _ in top]], config).images
    scale = float(weights.weights[..., 0].abs().max())
    def cells(values: torch.Tensor) -> torch.Tensor:  # one flat square per weight (nearest, not smoothed)
        factor = max(1, 96 // values.shape[-1])
        return values.repeat_interleave(factor, -1).repeat_interleave(factor, -2)

    heatmaps = [cells(diverging(weights.weights[:, :, i, 0], scale)) for i, _ in top]
    pictures = [icons[0], *icons[1:], cells(diverging(weights.weights[..., 0].sum(2), None)), *heatmaps]
    captions = [str(unit), *[f"{weights.source}:{i} ({v:+.3f})" for i, v in top],
                "summed over inputs", *[f"weights {weights.source}:{i}" for i, _ in top]]
    save_png(out, contact_sheet(pictures, captions, columns=len(top) + 1, cell=96,
                                title=f"{model.name}: {unit} from {weights.source} (expanded weights, {len(weights.weights)}x{len(weights.weights)})"))
    write_json(out.with_suffix(".json"), build_manifest(
        "expanded weights", model=model.name, unit=str(unit), source=weights.source, window=len(weights.weights),
        top_inputs=top, render=config))
    for channel, value in top:
        print(f"{weights.source}:{channel}  {value:+.4f}")
    print(out)


def _mechanics(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    config = MechanicsConfig(method=args.method, window=args.window,
                             render=RenderConfig(steps=args.steps, size=args.size, progress=not args.no_progress))
    parts = decompose(model, args.unit, args.source, config)
    explained = contributions(model, args.image, parts.source, parts.unit) if args.image else None
    save_png(out, decomposition_sheet(model, parts, explained, config))
    magnitudes = parts.magnitudes
    extra = {} if explained is None else {
        "image": args.image, "neuron": explained.unit, "bias": explained.bias, "linearized": explained.linearized,
        "actual": explained.actual, "contribution_per_cell": explained.window().sum(-1).tolist()}
    write_json(out.with_suffix(".json"), build_manifest(
        "decomposed feature visualization", model=model.name, unit=parts.unit, source=parts.source, method=parts.method,
        window=len(magnitudes), magnitudes=magnitudes.tolist(), config=config, **extra))
    y, x = divmod(int(magnitudes.argmax()), magnitudes.shape[1])
    print(f"{parts.unit} from {parts.source}: {len(magnitudes)}x{len(magnitudes)} window ({parts.method}), strongest cell ({x},{y})")
    if explained is not None:
        print(f"on {args.image} at {explained.unit}: bias {explained.bias:.3f} + contributions "
              f"{float(explained.values.sum()):.3f} = linearized {explained.linearized:.3f} (actual {explained.actual:.3f})")
    print(out)


def _views(args: argparse.Namespace) -> None:
    out = _png(args.out)
    model = load(args.model)
    config = RenderConfig(steps=args.steps, progress=not args.no_progress)
    views = objective_views(model, args.unit, config)
    save_png(out, views.sheet(columns=3, title=f"{model.name}: {args.unit} as neuron, channel and direction x cos"))
    write_json(out.with_suffix(".json"), build_manifest("objective views", model=model.name, unit=args.unit,
                                                        labels=views.labels, values=views.values.tolist(), render=config))
    print(out)


def _png(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise NeuronscopeError(f"--out must be a .png file, got '{out}'")
    return out


def parse_channels(text: str | None, count: int) -> list[int]:
    """'0:32', '3,7,9' or '5' as a list of channels in 0..count-1 (None: all of them)."""
    if text is None:
        return list(range(count))
    try:
        if ":" in text:
            start, _, stop = text.partition(":")
            first, last = int(start or 0), int(stop or count)
        else:
            chosen = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise NeuronscopeError(f"--channels must look like 0:32, 3,7,9 or 5, got '{text}'") from None
    if ":" in text:
        if not 0 <= first < last <= count:
            raise NeuronscopeError(f"channels {text} are out of range: the layer has channels 0..{count - 1}")
        chosen = list(range(first, last))
    bad = [c for c in chosen if not 0 <= c < count]
    if bad or not chosen:
        raise NeuronscopeError(f"channels {bad or text} are out of range: the layer has channels 0..{count - 1}")
    return chosen


def _print_table(rows: list[tuple[str, ...]], right: tuple[int, ...] = (), indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print(indent + "  ".join(cells).rstrip())


if __name__ == "__main__":
    sys.exit(main())
