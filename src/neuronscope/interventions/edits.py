"""Edits of a layer's activations: what an intervention does to the network.

    Ablate("blocks.4.2:17")                         channel 17 set to 0 everywhere
    Ablate(["blocks.4.2:17", "blocks.4.2:3@2,5"])   a channel, and one neuron
    Ablate("blocks.4.2", region=(2, 2, 5, 5))       every channel inside a box of the layer's grid
    Ablate("blocks.4.2:17", means=means)            set to its mean over a source (``mean_activations``)
    Ablate("blocks.4.2.features:40")                a dictionary feature (written back into blocks.4.2)
    Steer("blocks.4.2:17", 3.0)                     add 3 to the channel (a feature: to its pre-activation)
    ScaleGroup(groups, 1)                           neuron group 1 removed (scale 0) or scaled

An edit is a value: ``resolve(model)`` checks its addresses and returns ``LayerEdit``s, pure
functions of one layer's values (B, C, H, W) that the capture of ``intervene`` applies.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from ..errors import NeuronscopeError
from ..names import LOGITS
from ..units import Unit, parse_unit

if TYPE_CHECKING:
    from ..attribution.groups import NeuronGroups
    from ..models.model import Model
    from .means import ActivationMeans

Region = tuple[int, int, int, int]
"""(x0, y0, x1, y1) on a layer's grid: columns x0..x1-1 and rows y0..y1-1."""


@dataclass(frozen=True)
class LayerEdit:
    """One resolved change: ``apply`` maps the layer's values (B, C, H, W) to new values (no in-place change)."""

    layer: str
    apply: Callable[[torch.Tensor], torch.Tensor]
    label: str


class Edit(Protocol):
    """What ``intervene`` takes: something that resolves, against a model, to layer edits."""

    def resolve(self, model: Model) -> tuple[LayerEdit, ...]: ...


@dataclass(frozen=True)
class Ablate:
    """Set units to zero, or to their mean over a source (``means``). ``units``: addresses of
    channels (``layer:c``), neurons (``layer:c@x,y``) or whole layers (``layer``: every channel);
    ``region`` limits the edit to a box of the layer's grid."""

    units: str | Sequence[str]
    region: Region | None = None
    means: ActivationMeans | None = None

    def resolve(self, model: Model) -> tuple[LayerEdit, ...]:
        addresses = [self.units] if isinstance(self.units, str) else list(self.units)
        if not addresses:
            raise NeuronscopeError("Ablate needs at least one unit address")
        edits = []
        for unit in (_spatial_unit(model, address) for address in addresses):
            if self.region is not None:
                _check_region(model, unit, self.region)
            means = None if self.means is None else self.means.of(unit.layer)
            mode = "mean" if means is not None else "zero"
            where = f" in {self.region}" if self.region is not None and unit.position is None else ""
            edits.append(LayerEdit(unit.layer, _Ablation(unit, self.region, means), f"{mode}-ablate {unit}{where}"))
        return tuple(edits)


@dataclass(frozen=True)
class Steer:
    """Add ``alpha`` to a unit (a channel everywhere, or one neuron). For a TopK dictionary feature
    ``alpha`` raises its pre-activation; the dictionary's own encoding then decides its code (where
    it joins the k active features, the parent layer moves along its decoder atom, and the feature
    it displaces drops out)."""

    unit: str
    alpha: float

    def resolve(self, model: Model) -> tuple[LayerEdit, ...]:
        unit = _spatial_unit(model, self.unit)
        if unit.channel is None:
            raise NeuronscopeError(f"Steer needs a channel or a neuron (layer:c or layer:c@x,y), not the whole layer '{unit}'")
        return (LayerEdit(unit.layer, _Shift(unit, float(self.alpha)), f"steer {unit} by {self.alpha:+g}"),)


@dataclass(frozen=True)
class ScaleGroup:
    """Scale neuron group ``index`` of ``groups`` (``neuron_groups`` of the same image): its part of
    the activations, map x direction, is multiplied by ``scale`` (0 removes it, 2 doubles it)."""

    groups: NeuronGroups
    index: int
    scale: float = 0.0

    def resolve(self, model: Model) -> tuple[LayerEdit, ...]:
        if not 0 <= self.index < self.groups.k:
            raise NeuronscopeError(f"group {self.index} does not exist: the groups are 0..{self.groups.k - 1}")
        info = model.spatial_layer(self.groups.layer)
        direction = torch.as_tensor(self.groups.directions[self.index], dtype=torch.float32)
        where = torch.as_tensor(self.groups.maps[self.index], dtype=torch.float32)
        if direction.shape[0] != info.channels or tuple(where.shape) != tuple(info.spatial):
            raise NeuronscopeError(f"the groups were made at '{self.groups.layer}' on a grid of {tuple(where.shape)}, "
                                   f"which this model's layer ({info.channels} channels, {info.spatial}) does not match")
        part = direction[:, None, None] * where[None]
        verb = "remove" if self.scale == 0 else f"scale by {self.scale:g}"
        return (LayerEdit(info.name, _AddPart(part, self.scale - 1.0), f"{verb} group {self.index} of {info.name}"),)


@dataclass(frozen=True)
class _Ablation:
    unit: Unit
    region: Region | None
    means: torch.Tensor | None

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        mask = _mask(values, self.unit, self.region)
        fill = torch.zeros_like(values) if self.means is None else _broadcast_means(self.means, values)
        return torch.where(mask, fill, values)


@dataclass(frozen=True)
class _Shift:
    unit: Unit
    alpha: float

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return values + self.alpha * _mask(values, self.unit, None).to(values.dtype)


@dataclass(frozen=True)
class _AddPart:
    part: torch.Tensor
    factor: float

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return values + self.factor * self.part.to(values.device, values.dtype)


def _spatial_unit(model: Model, address: str) -> Unit:
    unit = parse_unit(model, address)
    if unit.layer == LOGITS:
        raise NeuronscopeError(f"'{address}' is a class: interventions edit hidden layers (their output is what changes)")
    model.spatial_layer(unit.layer)
    return unit


def _check_region(model: Model, unit: Unit, region: Region) -> None:
    height, width = model.layer(unit.layer).spatial
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise NeuronscopeError(f"region {region} is not a box (x0, y0, x1, y1) inside the {width}x{height} grid of "
                               f"'{unit.layer}' (0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height})")
    if unit.position is not None:
        raise NeuronscopeError(f"'{unit}' names one position already; give a channel or the layer with a region")


def _mask(values: torch.Tensor, unit: Unit, region: Region | None) -> torch.Tensor:
    """(1, C, H, W) True where the edit applies (broadcast over the batch)."""
    channels, height, width = values.shape[1:]
    mask = torch.zeros((1, channels, height, width), dtype=torch.bool, device=values.device)
    picked = slice(None) if unit.channel is None else slice(unit.channel, unit.channel + 1)
    if unit.position is not None:
        x, y = unit.position
        mask[:, picked, y, x] = True
    elif region is not None:
        x0, y0, x1, y1 = region
        mask[:, picked, y0:y1, x0:x1] = True
    else:
        mask[:, picked] = True
    return mask


def _broadcast_means(means: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The mean map (C, H, W) over ``values``; at another grid size each channel's overall mean."""
    means = means.to(values.device, values.dtype)
    if tuple(means.shape[1:]) != tuple(values.shape[2:]):
        means = means.mean(dim=(1, 2), keepdim=True)
    return means.unsqueeze(0).expand_as(values)
