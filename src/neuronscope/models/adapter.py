"""`wrap`: turn any user ``nn.Module`` into a `Model`."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..errors import NeuronscopeError
from .labels import imagenet_labels, imagenet_synonyms
from .model import Model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "tf": ((127 / 255,) * 3, (128 / 255,) * 3),
    "none": None,
}
"""Named normalizations: torchvision's ImageNet mean/std, TF-Lite's (255 x - 127) / 128, or none."""

Normalization = str | tuple[Sequence[float], Sequence[float]] | None


def wrap(
    module: nn.Module,
    *,
    input_size: int | tuple[int, int] = 224,
    normalize: Normalization = None,
    labels: str | Sequence[str] | None = None,
    name: str | None = None,
    input_channels: int | None = None,
    crop_fraction: float = 1.0,
    layers: Sequence[str] | None = None,
) -> Model:
    """A `Model` for any image network.

    Args:
        module: the network; it is put in eval mode. Its weights are not changed.
        input_size: default (height, width) (or one int for square inputs).
        normalize: ``"imagenet"``, ``"tf"``, ``(mean, std)`` on [0, 1] inputs, or None (the network
            takes [0, 1] images as they are).
        labels: class names by output index, or ``"imagenet"`` for the bundled ImageNet-1k names.
        name: shown in errors, manifests and the gallery (default: the class name).
        input_channels: default: the ``in_channels`` of the first Conv2d, else 3.
        crop_fraction: fraction of the centred crop ``prepare`` takes from a photo (1.0 = all of it).
        layers: the curated layers to show (default: every capturable layer). Layers, channel
            counts and spatial sizes are found by one probe forward pass at ``input_size``.
    """
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if isinstance(normalize, str):
        if normalize.lower() not in NORMALIZATIONS:
            raise NeuronscopeError(f"unknown normalization '{normalize}': choose one of {', '.join(NORMALIZATIONS)} or (mean, std)")
        normalize = NORMALIZATIONS[normalize.lower()]
    mean, std = normalize if normalize is not None else (None, None)
    synonyms = None
    if isinstance(labels, str):
        if labels != "imagenet":
            raise NeuronscopeError(f"unknown label set '{labels}': give 'imagenet' or a list of class names")
        labels, synonyms = imagenet_labels(), imagenet_synonyms()
    if input_channels is None:
        first_conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
        input_channels = first_conv.in_channels if first_conv is not None else 3
    model = Model(
        module,
        name=name or type(module).__name__,
        input_size=input_size,
        input_channels=input_channels,
        mean=mean,
        std=std,
        labels=labels,
        label_synonyms=synonyms,
        crop_fraction=crop_fraction,
        curated=layers,
    )
    if model.labels is not None and model.num_classes not in (None, len(model.labels)):
        raise NeuronscopeError(f"{len(model.labels)} labels given but the model outputs {model.num_classes} classes")
    return model
