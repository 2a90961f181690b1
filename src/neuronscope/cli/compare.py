"""The ``compare`` command: which units and layers of two models correspond."""
from __future__ import annotations

import argparse

from ..comparison.match import MatchConfig, finish_matching, unit_matching
from ..comparison.positions import GRID_MODES
from ..comparison.report import describe, write_comparison
from ..comparison.sheets import SheetConfig
from ..data.resolve import resolve_source
from ..data.sources import ImageSource, first
from ..errors import NeuronscopeError
from ..examples import ExamplesConfig, ExamplesPass
from ..models.depth import matched_layers, representative_layers
from ..models.model import Model
from ..stream import stream
from ..units import parse_unit
from .common import (
    MODEL_HELP,
    SOURCE_HELP,
    folder_path,
    load_model,
    model_options,
    no_progress,
    print_table,
    split_list,
)


def add_commands(commands) -> None:
    """Add ``compare`` to the CLI's subcommands."""
    com = commands.add_parser(
        "compare", help="match the units and layers of two models: a CKA heatmap across depth and a sheet of matched units",
        description="Correlate every unit of some layers of model A with every unit of some layers of model B over "
                    "the same images, positions aligned by relative location, in one pass; linear CKA of every pair "
                    "of layers. Writes similarity.png, matches.png, matches.json (+ .npz) and manifest.json.")
    com.add_argument("model", metavar="A", help=MODEL_HELP)
    com.add_argument("model_b", metavar="B", help="the second model, a spec like A")
    model_options(com)
    com.add_argument("--weights-b", default=None, metavar="FILE", help="state dict for B (--weights is A's)")
    com.add_argument("--layers", default=None, help="comma-separated layers of A (default: the last layer of each of the 6 deepest stages)")
    com.add_argument("--layers-b", default=None,
                     help="comma-separated layers of B, or 'matched': B's curated layers nearest in relative depth to A's "
                          "(default: the last layer of each of B's 6 deepest stages)")
    com.add_argument("--source", default=None, help=SOURCE_HELP)
    com.add_argument("--images", type=int, default=None, metavar="N", help="use only the first N images of the source")
    com.add_argument("--units", default="4",
                     help="the sheet's units: N (the N best-matched units of A's middle layer, default 4) or units of A "
                          "like blocks.4.2:7,blocks.4.2:9")
    com.add_argument("--grid", default="pair", help="positions compared: pair (the smaller grid of each pair, default), common or N")
    com.add_argument("--top", type=int, default=5, help="best matches per unit in matches.json (default 5)")
    com.add_argument("--steps", type=int, default=128, help="steps per feature visualization on the sheet (default 128)")
    com.add_argument("-o", "--out", required=True, help="the folder to write into")
    no_progress(com)
    com.set_defaults(run=_compare)


def _compare(args: argparse.Namespace) -> None:
    out = folder_path(args.out)
    config = MatchConfig(grid=_grid(args.grid), top=args.top, progress=not args.no_progress)
    source = _source(args.source, args.images)
    model_a = load_model(args)
    layers_a = [model_a.layer(name).name for name in split_list(args.layers)] or representative_layers(model_a)
    units = _units(args.units, model_a, layers_a)
    model_b = load_model(argparse.Namespace(**{**vars(args), "weights": args.weights_b}), source=args.model_b)
    layers_b = _layers_b(args.layers_b, model_a, layers_a, model_b)
    sheet = SheetConfig(steps=args.steps, progress=not args.no_progress)
    matches, examples = _matches_and_examples(model_a, model_b, source, layers_a, layers_b, config, sheet)
    paths = write_comparison(model_a, model_b, matches, out, units, source, sheet, examples)
    print(f"{model_a.name} vs {model_b.name} on {matches.images} images of {source.name}:")
    print_table(describe(matches), right=(1, 3, 4, 5, 6), indent="  ")
    for path in paths:
        print(path)


def _matches_and_examples(model_a: Model, model_b: Model, source, layers_a: list[str], layers_b: list[str] | None,
                          config: MatchConfig, sheet: SheetConfig):
    """The matches and both models' dataset examples of the compared layers (for the sheet), from
    one pass over ``source``."""
    matching = unit_matching(model_a, model_b, layers_a, layers_b, config)
    wanted = {model_a: list(matching.layers_a)}
    wanted.setdefault(model_b, [])
    wanted[model_b] = list(dict.fromkeys([*wanted[model_b], *matching.layers_b]))
    found = {m: ExamplesPass(m, source, names, ExamplesConfig(k=sheet.examples, progress=False))
             for m, names in wanted.items()}
    result = stream(source, [matching, *(f.accumulator for f in found.values())], config.pass_config(),
                    what=f"compare {model_a.name} / {model_b.name}")
    for f in found.values():
        f.finish(result)
    return finish_matching(matching, source, result, config), (found[model_a].results, found[model_b].results)


def _layers_b(text: str | None, model_a: Model, layers_a: list[str], model_b: Model) -> list[str] | None:
    if text is not None and text.strip() == "matched":
        return list(dict.fromkeys(matched_layers(model_a, layers_a, model_b)))
    names = split_list(text)
    return [model_b.layer(name).name for name in names] if names else None


def _units(text: str, model: Model, layers: list[str]) -> int | list[str]:
    """``--units``: a count, or units of A (channels of the compared layers), checked before the pass."""
    if text.strip().isdigit():
        if int(text) < 1:
            raise NeuronscopeError(f"--units must be at least 1, got {text}")
        return int(text)
    units = []
    for part in split_list(text):
        unit = parse_unit(model, part)
        if unit.channel is None or unit.position is not None:
            raise NeuronscopeError(f"--units takes channels like {unit.layer}:7, got '{part}'")
        if unit.layer not in layers:
            raise NeuronscopeError(f"unit {part} is not in a compared layer of {model.name} ({', '.join(layers)}); add its layer to --layers")
        units.append(f"{unit.layer}:{unit.channel}")
    if not units:
        raise NeuronscopeError("--units is empty: give a count or units like blocks.4.2:7")
    return units


def _source(text: str | None, images: int | None) -> ImageSource:
    source = resolve_source(text)
    if images is None:
        return source
    if images < 1:
        raise NeuronscopeError(f"--images must be at least 1, got {images}")
    return first(source, images)


def _grid(text: str) -> str | int:
    if text.strip().isdigit():
        return int(text)
    if text not in GRID_MODES:
        raise NeuronscopeError(f"--grid must be {', '.join(GRID_MODES)} or a number of cells, got '{text}'")
    return text
