"""The looking-up commands: ``models``, ``layers``, ``photos``, ``classify`` and ``activations``."""
from __future__ import annotations

import argparse

from ..data.photos import PHOTOS
from ..models import DEFAULT_MODEL
from ..models.zoo import ZOO
from ..predict import classify
from ..readout import read_units
from .common import (
    MODEL_HELP,
    image_and_model,
    load_model,
    model_argument,
    model_options,
    print_table,
)


def add_commands(commands) -> None:
    """Add the looking-up commands to the CLI's subcommands."""
    models = commands.add_parser("models", help="list the models of the offline zoo")
    models.set_defaults(run=_models)

    layers = commands.add_parser("layers", help="list a model's layers: name, kind, channels, spatial size")
    model_argument(layers)
    layers.add_argument("--all", action="store_true", help="every capturable module, not just the curated layers")
    layers.set_defaults(run=_layers)

    photos = commands.add_parser("photos", help="list the bundled photos usable wherever an image is expected")
    photos.set_defaults(run=_photos)

    cls = commands.add_parser("classify", help="top classes for images (paths or bundled photo names)")
    cls.add_argument("images", nargs="+", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    cls.add_argument("--model", default=DEFAULT_MODEL, help=f"{MODEL_HELP} (default {DEFAULT_MODEL})")
    model_options(cls)
    cls.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    cls.add_argument("--whole", action="store_true",
                     help="classify the whole image, without the photo centre crop (for rendered images)")
    cls.set_defaults(run=_classify)

    act = commands.add_parser("activations", help="how strongly units respond to an image")
    image_and_model(act)
    act.add_argument("units", nargs="+", metavar="UNIT", help="layer, layer:channel, layer:channel@x,y or logits:class")
    act.set_defaults(run=_activations)


def _models(args: argparse.Namespace) -> None:
    width = max(len(name) for name in ZOO)
    for name, entry in ZOO.items():
        default = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name:<{width}}  {entry.description}{default}")


def _layers(args: argparse.Namespace) -> None:
    model = load_model(args, need_weights=False)
    rows = model.all_layers() if args.all else model.layers
    size = "x".join(map(str, model.input_size))
    print(f"{model.name}: input {model.input_channels}x{size}, {len(rows)} layers" + ("" if args.all else " (curated; --all for every module)"))
    table = [("layer", "kind", "channels", "spatial (HxW)")]
    for info in rows:
        spatial = "x".join(map(str, info.spatial)) if info.spatial else "-"
        if info.is_tokens:  # a transformer's tokens, shown as a grid of its patches
            spatial += f" tokens (+{info.prefix_tokens} apart)" if info.prefix_tokens else " tokens"
        table.append((info.name, info.kind, str(info.channels), spatial))
    print_table(table, right=(2,))


def _photos(args: argparse.Namespace) -> None:
    table = [("name", "shows", "licence", "from")]
    table += [(p.name, p.shows, p.licence, p.package) for p in PHOTOS.values()]
    print_table(table)


def _classify(args: argparse.Namespace) -> None:
    model = load_model(args)
    results = classify(model, args.images, top=args.top, crop=not args.whole)
    view = "whole image" if args.whole else "centre crop"
    for image, predictions in zip(args.images, results):
        print(f"{image}  ({model.name}, {view})")
        table = [("rank", "label", "class", "probability")]
        table += [(str(r), p.label, str(p.index), f"{p.probability:.4f}") for r, p in enumerate(predictions, 1)]
        print_table(table, right=(0, 2, 3), indent="  ")


def _activations(args: argparse.Namespace) -> None:
    model = load_model(args)
    table = [("unit", "mean", "max", "at (x,y)")]
    for reading in read_units(model, args.image, args.units):
        at = f"{reading.argmax[0]},{reading.argmax[1]}" if reading.argmax else "-"
        table.append((str(reading.unit), f"{reading.mean:.4f}", f"{reading.max:.4f}", at))
    print(f"{args.image}  ({model.name})")
    print_table(table, right=(1, 2), indent="  ")
