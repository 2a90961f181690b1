"""The ``neuronscope`` command: thin wrappers over the library.

Errors from the library are printed as one line on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .data import PHOTOS
from .errors import NeuronscopeError
from .models import DEFAULT_MODEL, load
from .models.zoo import ZOO
from .predict import classify
from .readout import read_units


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
    act.add_argument("image", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    act.add_argument("units", nargs="+", metavar="UNIT", help="layer, layer:channel, layer:channel@x,y or logits:class")
    act.add_argument("--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    act.set_defaults(run=_activations)
    return parser


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


def _print_table(rows: list[tuple[str, ...]], right: tuple[int, ...] = (), indent: str = "") -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print(indent + "  ".join(cells).rstrip())


if __name__ == "__main__":
    sys.exit(main())
