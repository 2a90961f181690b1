"""Objectives on what one unit computes: a channel (mean over positions), many channels at once,
a neuron (one position), a whole layer (DeepDream), a class logit or probability."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ...errors import NeuronscopeError
from .base import Activations, Objective, per_item
from .specs import recorded


@recorded
def channel(layer: str, index: int, batch: int | None = None) -> Objective:
    """Mean activation of one channel over positions."""

    def fn(acts: Activations) -> torch.Tensor:
        values = channel_values(acts[layer], index, layer)
        return values.flatten(1).mean(1) if values.dim() > 1 else values

    return Objective(per_item(fn, batch), (layer,), f"channel {layer}:{index}{item_suffix(batch)}")


@recorded
def channels(layer: str, indices: Sequence[int]) -> Objective:
    """Item i maximizes the mean of channel ``indices[i]``: a whole layer in one batch, vectorized."""
    index = torch.as_tensor(list(indices), dtype=torch.long)

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        if act.shape[0] != len(index):
            raise NeuronscopeError(f"channels objective for {len(index)} items got a batch of {act.shape[0]}")
        if int(index.max()) >= act.shape[1] or int(index.min()) < 0:
            raise NeuronscopeError(f"channels out of range for layer '{layer}': it has channels 0..{act.shape[1] - 1}")
        picked = act[torch.arange(len(index), device=act.device), index.to(act.device)]
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked

    return Objective(fn, (layer,), f"channels {layer}:{list(indices)}")


@recorded
def neuron(layer: str, index: int, x: int | None = None, y: int | None = None, batch: int | None = None) -> Objective:
    """One position of one channel: column ``x``, row ``y`` (default: the centre, W//2 and H//2)."""

    def fn(acts: Activations) -> torch.Tensor:
        values = channel_values(acts[layer], index, layer)
        if values.dim() != 3:
            raise NeuronscopeError(f"layer '{layer}' has no spatial positions; use a channel objective")
        col, row = grid_position(values.shape[1:], x, y, layer, "neuron")
        return values[:, row, col]

    where = "centre" if x is None and y is None else f"{x},{y}"
    return Objective(per_item(fn, batch), (layer,), f"neuron {layer}:{index}@{where}{item_suffix(batch)}")


@recorded
def layer(name: str, batch: int | None = None) -> Objective:
    """DeepDream: the mean squared activation of a whole layer."""
    return Objective(per_item(lambda acts: acts[name].pow(2).flatten(1).mean(1), batch), (name,), f"layer {name}{item_suffix(batch)}")


deepdream = layer


@recorded
def class_logit(index: int, batch: int | None = None, layer_name: str = "logits") -> Objective:
    """The pre-softmax logit of a class (better pictures than the probability)."""
    return Objective(per_item(lambda acts: acts[layer_name][:, index], batch), (layer_name,), f"logit {index}{item_suffix(batch)}")


@recorded
def class_probability(index: int, batch: int | None = None, layer_name: str = "logits") -> Objective:
    """The softmax probability of a class (also pushes the other classes down)."""
    return Objective(
        per_item(lambda acts: acts[layer_name].softmax(1)[:, index], batch), (layer_name,), f"probability {index}{item_suffix(batch)}"
    )


# --- helpers the other catalogue modules share ----------------------------------------------


def item_suffix(batch: int | None) -> str:
    """How a name marks an objective on one item: ``[3]``."""
    return "" if batch is None else f"[{batch}]"


def grid_position(grid: tuple[int, int], x: int | None, y: int | None, layer: str, what: str) -> tuple[int, int]:
    """(column, row) of a position on a (height, width) grid, the centre by default, checked."""
    height, width = grid
    col, row = (width // 2 if x is None else x), (height // 2 if y is None else y)
    if not (0 <= col < width and 0 <= row < height):
        raise NeuronscopeError(f"{what} ({col}, {row}) is outside layer '{layer}', which is {width}x{height} at this input size")
    return col, row


def channel_values(act: torch.Tensor, channel: int, layer: str) -> torch.Tensor:
    """One channel of (B, C, ...) activations, the index checked."""
    if not 0 <= channel < act.shape[1]:
        raise NeuronscopeError(f"channel {channel} is out of range for layer '{layer}': it has channels 0..{act.shape[1] - 1}")
    return act[:, channel]
