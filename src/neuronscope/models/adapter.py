"""`wrap`: turn any user ``nn.Module`` into a `Model`."""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .metadata import LabelSet, ModelInfo, Normalization, parse_labels, parse_normalization
from .model import Model


def wrap(
    module: nn.Module,
    *,
    input_size: int | tuple[int, int] = 224,
    normalize: Normalization = None,
    labels: LabelSet = None,
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
            takes [0, 1] images as they are); see ``parse_normalization``.
        labels: class names by output index, ``"imagenet"`` for the bundled ImageNet-1k names, or a
            text file with one name per line.
        name: shown in errors, manifests and the gallery (default: the class name).
        input_channels: default: the ``in_channels`` of the first Conv2d, else 3.
        crop_fraction: fraction of the centred crop ``prepare`` takes from a photo (1.0 = all of it).
        layers: the curated layers to show (default: every capturable layer). Layers, channel
            counts and spatial sizes are found by one probe forward pass at ``input_size``.
    """
    info = ModelInfo(
        name=name or type(module).__name__,
        input_size=input_size,
        input_channels=input_channels if input_channels is not None else first_conv_channels(module),
        normalization=parse_normalization(normalize),
        classes=parse_labels(labels),
        crop_fraction=crop_fraction,
        layers=layers,
    )
    return checked(Model(module, info))


def first_conv_channels(module: nn.Module) -> int:
    """The ``in_channels`` of the module's first Conv2d, else 3."""
    first_conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    return first_conv.in_channels if first_conv is not None else 3


def checked(model: Model) -> Model:
    """``model``, after the probe pass when it has class names: names that do not fit its outputs
    fail here, where they were given, not at first use."""
    if model.labels is not None:
        model.all_layers()
    return model
