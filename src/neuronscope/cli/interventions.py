"""The ``ablate`` command: switch units off (or steer them) in one image and print how the top
classes and the units of the next layer change."""
from __future__ import annotations

import argparse
from dataclasses import replace

from ..errors import NeuronscopeError
from ..interventions import Ablate, Steer, intervene, mean_activations
from ..interventions.edits import Region
from ..models.model import Model
from ..stream import PassConfig
from ..units import parse_unit
from .common import SOURCE_HELP, image_and_model, load_model, no_progress, print_table, split_list


def add_commands(commands) -> None:
    """Add ``ablate`` to the CLI's subcommands."""
    cmd = commands.add_parser("ablate", help="ablate (or steer) units in one image and print the top class changes")
    image_and_model(cmd)
    cmd.add_argument("units", nargs="+", metavar="UNIT",
                     help="units to edit together: layer:channel, layer:channel@x,y, a whole layer (with --region), "
                          "or a dictionary feature layer.features:i")
    cmd.add_argument("--mean-over", default=None, metavar="SOURCE",
                     help=f"set the units to their mean over these images instead of zero ({SOURCE_HELP})")
    cmd.add_argument("--steer", type=float, default=None, metavar="ALPHA",
                     help="add ALPHA to each unit instead of ablating it (a feature: to its pre-activation)")
    cmd.add_argument("--region", default=None, metavar="X0,Y0,X1,Y1",
                     help="only inside this box of the layer's grid (columns X0..X1-1, rows Y0..Y1-1)")
    cmd.add_argument("--top", type=int, default=5, help="classes and units to list (default 5)")
    cmd.add_argument("-o", "--out", default=None, metavar="FILE", help="also write the result as JSON")
    no_progress(cmd)
    cmd.set_defaults(run=_ablate)


def _ablate(args: argparse.Namespace) -> None:
    model = load_model(args)
    found = intervene(model, args.image, _edits(model, args))
    print(f"edits: {'; '.join(found.edits)}")
    rows = [("class", "before", "after", "change")]
    rows += [(c.label, f"{c.before:.4f}", f"{c.after:.4f}", f"{c.change:+.4f}") for c in found.classes(args.top)]
    print_table(rows, right=(1, 2, 3))
    for layer in found.downstream:
        print(f"\nunits of {layer} that changed most (mean over positions):")
        units = [(u.unit, f"{u.before:.3f}", f"{u.after:.3f}", f"{u.change:+.3f}") for u in found.units(layer, args.top)]
        print_table([("unit", "before", "after", "change"), *units], right=(1, 2, 3), indent="  ")
    if args.out:
        print(f"\nwrote {found.save(args.out)}")


def _edits(model: Model, args: argparse.Namespace) -> list:
    """The edits the options ask for (checked before any pass over a source)."""
    if args.steer is not None and (args.mean_over or args.region):
        raise NeuronscopeError("--steer adds to the units; it does not take --mean-over or --region")
    if args.steer is not None:
        return [Steer(unit, args.steer) for unit in args.units]
    region = _region(args.region)
    edit = Ablate(args.units, region=region)
    edit.resolve(model)
    if args.mean_over is None:
        return [edit]
    layers = [parse_unit(model, unit).layer for unit in args.units]
    return [replace(edit, means=mean_activations(model, args.mean_over, layers, PassConfig(progress=not args.no_progress)))]


def _region(text: str | None) -> Region | None:
    if text is None:
        return None
    parts = split_list(text)
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        raise NeuronscopeError(f"--region must be four integers X0,Y0,X1,Y1, got '{text}'")
    return tuple(int(p) for p in parts)
