"""Penalties on the image itself (the ``"input"`` entry of the activations): use them with a
negative weight, ``objective - w * total_variation()``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import NeuronscopeError
from ...names import INPUT
from .base import Activations, Objective, per_item
from .specs import recorded


@recorded
def l1(constant: float = 0.5, layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """``sum |t - constant|`` per item: a penalty, use ``objective - w * l1()``."""
    return Objective(
        per_item(lambda acts: (acts[layer_name] - constant).abs().flatten(1).sum(1), batch), (layer_name,), "L1"
    )


@recorded
def total_variation(layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """Anisotropic total variation per item (sum of absolute neighbour differences): a penalty."""

    def fn(acts: Activations) -> torch.Tensor:
        t = acts[layer_name]
        dy = (t[:, :, 1:, :] - t[:, :, :-1, :]).abs().flatten(1).sum(1)
        dx = (t[:, :, :, 1:] - t[:, :, :, :-1]).abs().flatten(1).sum(1)
        return dx + dy

    return Objective(per_item(fn, batch), (layer_name,), "total variation")


@recorded
def pixel_distance(target: torch.Tensor, layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """Mean squared difference per item between the image and ``target`` ((C, H, W) or (B, C, H, W)
    in [0, 1]): a penalty, use ``objective - w * pixel_distance(photo)`` to stay close to a photo."""
    reference = torch.as_tensor(target, dtype=torch.float32)

    def fn(acts: Activations) -> torch.Tensor:
        image = acts[layer_name]
        goal = reference.to(image)
        if goal.shape[-3:] != image.shape[-3:]:
            raise NeuronscopeError(f"pixel_distance target is {tuple(goal.shape[-3:])}, the images are {tuple(image.shape[-3:])}")
        return _only((image - goal).pow(2).flatten(1).mean(1), batch)  # a (B, ...) target: item by item

    return Objective(fn, (layer_name,), "pixel distance")


@recorded
def blur_penalty(layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """``1/2 sum (x - stopgrad(blur3(x)))^2`` per item: ascending ``-w *`` this blurs the image a bit
    each step (Lucid's ``blur_input_each_step``)."""

    def fn(acts: Activations) -> torch.Tensor:
        x = acts[layer_name]
        with torch.no_grad():
            blurred = _blur3(x)
        return 0.5 * (x - blurred).pow(2).flatten(1).sum(1)

    return Objective(per_item(fn, batch), (layer_name,), "blur")


def _blur3(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 0.5]], dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    weight = kernel.expand(channels, 1, 3, 3).contiguous()
    summed = F.conv2d(x, weight, padding=1, groups=channels)
    norm = F.conv2d(torch.ones_like(x[:1]), weight, padding=1, groups=channels)
    return summed / norm


def _only(values: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Keep item ``batch`` of a (B,) tensor, zero elsewhere (all items when batch is None)."""
    if batch is None:
        return values
    if not -values.shape[0] <= batch < values.shape[0]:
        raise NeuronscopeError(f"batch index {batch} is out of range for a batch of {values.shape[0]}")
    mask = torch.zeros_like(values)
    mask[batch] = 1.0
    return values * mask
