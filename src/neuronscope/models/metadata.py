"""What a `Model` knows about its network besides the module, and the one parser of the ways to
name a normalization and a label set (used by ``wrap``, model specs and the zoo alike)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import NeuronscopeError
from .labels import Labels, imagenet_labels, imagenet_synonyms

if TYPE_CHECKING:
    from .spec import ModelSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "tf": ((127 / 255,) * 3, (128 / 255,) * 3),
    "none": None,
}
"""Named normalizations: torchvision's ImageNet mean/std, TF-Lite's (255 x - 127) / 128, or none."""

MeanStd = tuple[tuple[float, ...], tuple[float, ...]]
Normalization = str | tuple[Sequence[float], Sequence[float]] | None
"""A name of ``NORMALIZATIONS``, ``MEAN,STD`` as text, a (mean, std) pair on [0, 1] inputs, or None."""
LabelSet = str | Sequence[str] | Labels | None
"""``imagenet``, a text file with one class name per line, the names by class index, or None."""


@dataclass(frozen=True)
class ModelInfo:
    """Everything a `Model` knows besides its module, given whole when the model is built.

    Attributes:
        name: shown in errors, manifests and the gallery.
        input_size: default (height, width); one int means a square.
        input_channels: channels of an input image.
        normalization: (mean, std) on [0, 1] inputs applied before the forward pass (see
            ``parse_normalization``), or None: the network takes [0, 1] images as they are.
        classes: the class names (see ``parse_labels``), or None: classes are indices only.
        crop_fraction: fraction of the centred crop ``prepare`` takes from a photo (1.0 = all of it).
        layers: the curated layers to show, or None: every capturable layer.
        weights_missing: None, or why the network has no trained weights here and how to get them.
        precision: autocast dtype of the forward pass, or None: the parameters' own dtype.
        spec: the ``ModelSpec`` the model was loaded from (None for ``wrap``): manifests record it.
    """

    name: str
    input_size: tuple[int, int] | int = (224, 224)
    input_channels: int = 3
    normalization: MeanStd | None = None
    classes: Labels | None = None
    crop_fraction: float = 1.0
    layers: tuple[str, ...] | None = None
    weights_missing: str | None = None
    precision: torch.dtype | None = None
    spec: ModelSpec | None = None

    def __post_init__(self) -> None:
        size = self.input_size
        height, width = (size, size) if isinstance(size, int) else size
        object.__setattr__(self, "input_size", (int(height), int(width)))
        object.__setattr__(self, "input_channels", int(self.input_channels))
        object.__setattr__(self, "crop_fraction", float(self.crop_fraction))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))


def parse_normalization(value: Normalization) -> MeanStd | None:
    """(mean, std) on [0, 1] inputs from any way to name a normalization: ``imagenet``, ``tf``,
    ``none`` (any case), ``MEAN,STD`` text (2 numbers for all channels, or the means then the
    stds), a (mean, std) pair, or None (no normalization)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.lower() in NORMALIZATIONS:
            return NORMALIZATIONS[value.lower()]
        mean, std = _numbers(value)
    else:
        try:
            mean, std = (tuple(float(v) for v in part) for part in value)
        except (TypeError, ValueError):
            raise NeuronscopeError(f"normalization {value!r} is not a (mean, std) pair of sequences of numbers") from None
    if any(s <= 0 for s in std):
        raise NeuronscopeError(f"normalization '{value}' has a std <= 0")
    return mean, std


def parse_labels(value: LabelSet) -> Labels | None:
    """Class names from any way to name them: ``imagenet`` (the bundled ImageNet-1k names with
    their synonyms), a text file with one class name per line, the names by class index, or None."""
    if value is None or isinstance(value, Labels):
        return value
    if value == "imagenet":
        return Labels(imagenet_labels(), imagenet_synonyms())
    if isinstance(value, str):
        path = Path(value)
        if not path.is_file():
            raise NeuronscopeError(f"labels must be 'imagenet', a text file with one class name per line or a list "
                                   f"of class names; '{value}' is not a file")
        return Labels(tuple(line.strip() for line in path.read_text().splitlines() if line.strip()))
    return Labels(tuple(value))


def _numbers(text: str) -> MeanStd:
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) < 2 or len(numbers) % 2:
        raise NeuronscopeError(f"unknown normalization '{text}': choose one of {', '.join(NORMALIZATIONS)}, (mean, std), "
                               "or MEAN,STD as 2 numbers (all channels) or 2 x channels numbers (means, then stds) "
                               "on [0, 1] inputs")
    half = len(numbers) // 2
    mean, std = numbers[:half], numbers[half:]
    if half == 1:
        mean, std = mean * 3, std * 3
    return tuple(mean), tuple(std)
