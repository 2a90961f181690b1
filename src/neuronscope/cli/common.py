"""What the command modules share: the common options, output checks, and table printing."""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ..dictionaries import Dictionary, with_features
from ..errors import NeuronscopeError
from ..featurevis.loop import OPTIMIZERS, SCHEDULES
from ..featurevis.param import PARAMS
from ..featurevis.render import RenderConfig
from ..featurevis.transforms import PRESETS
from ..models import DEFAULT_MODEL
from ..models.model import Model
from ..models.placement import PRECISIONS
from ..models.spec import ModelSpec, WeightsMissingWarning

MODEL_HELP = ("a zoo model (neuronscope models), package.module:factory, path/to/file.py:factory "
              "or a TorchScript file")
SOURCE_HELP = "images: a folder, a .txt list of files or tar shards (default: crops of the bundled photos)"


def model_argument(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    """The positional MODEL (a spec) and the options that say how to load it."""
    if optional:
        parser.add_argument("model", nargs="?", default=DEFAULT_MODEL, metavar="MODEL", help=f"{MODEL_HELP} (default {DEFAULT_MODEL})")
    else:
        parser.add_argument("model", metavar="MODEL", help=f"{MODEL_HELP}, e.g. {DEFAULT_MODEL}")
    model_options(parser)


def image_and_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE", help="image file, or a bundled photo name like 'chelsea'")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"{MODEL_HELP} (default {DEFAULT_MODEL})")
    model_options(parser)


def model_options(parser: argparse.ArgumentParser) -> None:
    """How to load MODEL: weights, metadata a user's model may not carry, device and precision."""
    group = parser.add_argument_group("model loading")
    group.add_argument("--weights", default=None, metavar="FILE", help="state dict loaded strict into the model")
    group.add_argument("--input-size", type=int, default=None, metavar="N", help="input side in pixels (default: the model's, else 224)")
    group.add_argument("--normalize", default=None, metavar="NORM",
                       help="imagenet, tf, none or MEAN,STD on [0, 1] inputs (default: the model's, else imagenet)")
    group.add_argument("--labels", default=None, metavar="LABELS",
                       help="imagenet or a file with one class name per line (default: the model's; imagenet for 1000 outputs)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto: a GPU when there is one)")
    group.add_argument("--precision", default=None, choices=sorted(PRECISIONS), help="autocast the forward pass (default float32)")
    group.add_argument("--feature-dictionary", action="append", default=[], metavar="FILE",
                       help="a dictionary written by `neuronscope features` (dictionary.npz): its features become the "
                            "layer LAYER.features, addressed like LAYER.features:17@3,4 (repeatable)")


def load_model(args: argparse.Namespace, source: str | None = None, need_weights: bool = True) -> Model:
    """The model named by ``args.model`` (or ``source``) with the ``model_options``."""
    spec = ModelSpec(source or args.model, weights=args.weights, input_size=args.input_size, normalize=args.normalize,
                     labels=args.labels, device=args.device, precision=args.precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsMissingWarning)  # an error below, or fine for `layers`
        model = spec.load()
    if need_weights and getattr(model, "weights_missing", None):
        raise NeuronscopeError(model.weights_missing)
    for path in getattr(args, "feature_dictionary", ()):
        model = with_features(model, Dictionary.load(path))
    return model


def out_png(parser: argparse.ArgumentParser, what: str = "the picture") -> None:
    parser.add_argument("-o", "--out", required=True, help=f"{what} to write (.png); a manifest is written beside it")


def no_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def render_options(parser: argparse.ArgumentParser) -> None:
    defaults = RenderConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimization steps (default {defaults.steps})")
    parser.add_argument("--size", type=int, default=defaults.size,
                        help="image side in pixels (default: the model's input size for classes and pooled layers, "
                             "128 for channels of spatial layers)")
    parser.add_argument("--param", default=defaults.param, help=f"parameterization: {', '.join(PARAMS)} (default {defaults.param})")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 0.05; 1.0 for maco)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    parser.add_argument("--transforms", default=None,
                        help=f"transform preset: {', '.join(PRESETS)} (default: zoom for classes, lucid for channels; "
                             "maco: random crops of a large image with noise, as MaCo's authors)")
    parser.add_argument("--optimizer", default=None, choices=sorted(OPTIMIZERS), help="default adam")
    parser.add_argument("--schedule", default=defaults.schedule, choices=SCHEDULES,
                        help=f"learning-rate schedule over the steps (default {defaults.schedule}; constant: Lucid's)")
    parser.add_argument("--views", type=int, default=1, metavar="N",
                        help="random views per step, gradients summed (default 1; MaCo's authors use 6)")
    parser.add_argument("--transparency", action="store_true",
                        help="also write where each image matters (accumulated |gradient|) as NAME_alpha.png")
    no_progress(parser)


def render_config(args: argparse.Namespace) -> RenderConfig:
    """The RenderConfig of ``render_options``."""
    return RenderConfig(steps=args.steps, size=args.size, param=args.param, lr=args.lr, seed=args.seed,
                        transforms=args.transforms, optimizer=args.optimizer, views=args.views, schedule=args.schedule,
                        transparency=args.transparency, progress=not args.no_progress)


def png_path(path: str) -> Path:
    """``--out`` of a command that writes one picture: it must name a .png file (checked before any work)."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise NeuronscopeError(f"--out must be a .png file, got '{out}'")
    return out


def folder_path(path: str) -> Path:
    """``--out`` of a command that writes a folder: a name ending in .png is a mistake, not a folder."""
    out = Path(path)
    if out.suffix.lower() == ".png":
        raise NeuronscopeError(f"--out is the folder to write the pictures, sheet and manifest into; "
                               f"give a folder, not '{out}'")
    return out


def split_list(text: str | None) -> list[str]:
    """Comma-separated names, blanks dropped ([] for None)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


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


def print_table(rows: list[tuple[str, ...]], right: tuple[int, ...] = (), indent: str = "") -> None:
    """Rows as aligned columns (``right``: the columns aligned right), the first row a header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print(indent + "  ".join(cells).rstrip())
