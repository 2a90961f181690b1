"""Reading units on an image: what a channel, a neuron or a class does on one photo."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .capture import capture
from .models.model import Model
from .units import Unit, parse_units


@dataclass(frozen=True)
class Reading:
    """A unit's response to an image. For a channel: the mean over positions and the strongest
    position; for a neuron or a class: its value (``mean`` and ``max`` are equal)."""

    unit: Unit
    mean: float
    max: float
    argmax: tuple[int, int] | None
    """(x, y) of the maximum for spatial units, else None."""


def read_units(model: Model, image: str | np.ndarray, units: Sequence[str | Unit]) -> list[Reading]:
    """The response of each unit (addresses or parsed Units) to one image at the model's input size."""
    parsed = [u if isinstance(u, Unit) else parse_units(model, [u])[0] for u in units]
    x = model.input(image)
    with torch.no_grad(), capture(model, sorted({u.layer for u in parsed})) as cap:
        acts = cap(x)
    return [_read(acts[u.layer][0], u) for u in parsed]


@dataclass(frozen=True)
class ImageReading:
    """One image's prepared input (1, C, H, W) and its activations at some layers, from one
    forward pass. Give it where an image is expected (``layer_activations``, and through it
    neuron groups and semantic dictionaries) to reuse the pass instead of running another."""

    x: torch.Tensor
    activations: dict[str, torch.Tensor]


def read_image(model: Model, image, layers: Sequence[str], size: int | tuple[int, int] | None = None) -> ImageReading:
    """``image`` (anything ``Model.input`` accepts) through ``model`` once, keeping ``layers``."""
    x = model.input(image, size)
    with torch.no_grad(), capture(model, list(dict.fromkeys(layers))) as cap:
        return ImageReading(x, cap(x))


def layer_activations(model: Model, image, layer: str,
                      size: int | tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's activations at one layer, without gradients: (the prepared (1, C, H, W) input,
    the layer's (C, ...) output). ``image`` is anything ``Model.input`` accepts, or an
    ``ImageReading`` that holds the layer (at the size asked for)."""
    if isinstance(image, ImageReading) and layer in image.activations and size is None:
        return image.x, image.activations[layer][0]
    if isinstance(image, ImageReading):
        image = image.x
    x = model.input(image, size)
    with torch.no_grad(), capture(model, [layer]) as cap:
        return x, cap(x)[layer][0]


def channel_peaks(model: Model, images: torch.Tensor, units: Sequence[Unit]) -> torch.Tensor:
    """(N,): each unit's (a channel of a layer) largest activation anywhere on its own image,
    ``images[i]`` for ``units[i]``, seen as they are (no transforms): comparable to the spatial
    maxima by which dataset examples are ranked."""
    layers = list(dict.fromkeys(unit.layer for unit in units))
    with torch.no_grad(), capture(model, layers) as cap:
        acts = cap(images.to(model.device, model.dtype))
    return torch.stack([acts[unit.layer][i, unit.channel].reshape(-1).amax() for i, unit in enumerate(units)]).cpu()


def _read(activation: torch.Tensor, unit: Unit) -> Reading:
    values = activation if unit.channel is None else activation[unit.channel]
    if unit.position is not None:
        x, y = unit.position
        value = float(values[y, x])
        return Reading(unit, value, value, unit.position)
    argmax = None
    if values.dim() == 2:
        row, col = divmod(int(values.argmax()), values.shape[1])
        argmax = (col, row)
    return Reading(unit, float(values.mean()), float(values.max()), argmax)
