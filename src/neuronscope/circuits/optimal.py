"""Method B of decomposed feature visualization: optimize the earlier layer's activations directly."""
from __future__ import annotations

import torch

from ..capture import capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..units import parse_unit
from .expanded import window_probe


def optimal_input_pattern(model: Model, unit: str, from_layer: str, window: int = 5, *, steps: int = 200,
                          nonnegative: bool = False, step: float = 0.5, seed: int = 0, radius: float = 1.0) -> torch.Tensor:
    """Method B of decomposed feature visualization: the (C1, W, W) pattern of ``from_layer``
    activations, of norm ``radius`` (and non-negative if asked), that maximizes ``unit`` at the centre of
    its layer, found by projected gradient ascent on the real (not linearized) network: plain
    normalized steps, not Adam, whose per-coordinate scaling would converge to the sign pattern.

    On a linear path the optimum is the expanded weights' direction; with non-negativity, their
    positive part.
    """
    source = model.layer(from_layer)
    target = parse_unit(model, unit)
    if target.channel is None or target.layer == LOGITS or model.depth(target.layer) <= model.depth(source.name):
        raise NeuronscopeError(f"give a channel of a layer after '{source.name}', like {source.name}:0 of a later layer")
    probe = window_probe(model, source.name, window)
    generator = torch.Generator().manual_seed(seed)
    pattern = torch.rand(1, source.channels, window, window, generator=generator).to(model.device, model.dtype)
    pattern = (pattern * radius / pattern.norm()).requires_grad_(True)
    with torch.enable_grad(), capture(model, [source.name, target.layer], replace={source.name: lambda out: pattern}) as cap:
        for _ in range(steps):
            later = cap(probe)[target.layer][0, target.channel]
            (grad,) = torch.autograd.grad(later[(later.shape[0] - 1) // 2, (later.shape[1] - 1) // 2], pattern)
            with torch.no_grad():
                pattern.add_(step * radius * grad / grad.norm().clamp(min=1e-12))
                if nonnegative:
                    pattern.clamp_(min=0)
                pattern.mul_(radius / pattern.norm().clamp(min=1e-12))
    return pattern.detach()[0].cpu()
