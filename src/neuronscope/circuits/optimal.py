"""Method B of decomposed feature visualization: optimize the earlier layer's activations directly."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..capture import capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..units import parse_unit
from .expanded import window_probe


@dataclass(frozen=True)
class PatternConfig:
    """How ``optimal_input_pattern`` searches."""

    steps: int = 200
    """Projected gradient steps."""
    nonnegative: bool = False
    """Keep the pattern ``>= 0`` (for an earlier layer that is never negative, e.g. post-ReLU)."""
    step: float = 0.5
    """Each step's length, as a share of ``radius``."""
    seed: int = 0
    """Seed of the random starting pattern."""
    radius: float = 1.0
    """The pattern's norm (``typical_patch_norm``: that of a natural patch of the layer)."""

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise NeuronscopeError(f"steps must be a positive integer, got {self.steps!r}")
        if not self.step > 0 or not self.radius > 0:
            raise NeuronscopeError(f"step and radius must be positive, got {self.step!r} and {self.radius!r}")


def optimal_input_pattern(model: Model, unit: str, from_layer: str, window: int = 5,
                          config: PatternConfig | None = None) -> torch.Tensor:
    """Method B of decomposed feature visualization: the (C1, W, W) pattern of ``from_layer``
    activations, of norm ``config.radius`` (and non-negative if asked), that maximizes ``unit`` at the
    centre of its layer, found by projected gradient ascent on the real (not linearized) network:
    plain normalized steps, not Adam, whose per-coordinate scaling would converge to the sign pattern.

    On a linear path the optimum is the expanded weights' direction; with non-negativity, their
    positive part.
    """
    config = config or PatternConfig()
    source = model.layer(from_layer)
    target = parse_unit(model, unit)
    if target.channel is None or target.layer == LOGITS or model.depth(target.layer) <= model.depth(source.name):
        raise NeuronscopeError(f"give a channel of a layer after '{source.name}', like {source.name}:0 of a later layer")
    probe = window_probe(model, source.name, window)
    radius = config.radius
    generator = torch.Generator().manual_seed(config.seed)
    pattern = torch.rand(1, source.channels, window, window, generator=generator).to(model.device, model.dtype)
    pattern = (pattern * radius / pattern.norm()).requires_grad_(True)
    with torch.enable_grad(), capture(model, [source.name, target.layer], replace={source.name: lambda out: pattern}) as cap:
        for _ in range(config.steps):
            later = cap(probe)[target.layer][0, target.channel]
            (grad,) = torch.autograd.grad(later[(later.shape[0] - 1) // 2, (later.shape[1] - 1) // 2], pattern)
            with torch.no_grad():
                pattern.add_(config.step * radius * grad / grad.norm().clamp(min=1e-12))
                if config.nonnegative:
                    pattern.clamp_(min=0)
                pattern.mul_(radius / pattern.norm().clamp(min=1e-12))
    return pattern.detach()[0].cpu()


def typical_patch_norm(model: Model, layer: str, window: int, photos: Sequence[str] = ("chelsea", "coffee", "astronaut")) -> float:
    """The median norm of the W x W patches of ``layer``'s activations on a few bundled photos (the
    radius of Method B's pattern)."""
    x = torch.cat([model.input(name) for name in photos])
    with torch.no_grad(), capture(model, [layer]) as cap:
        act = cap(x)[layer]
    patches = F.unfold(act, min(window, *act.shape[-2:]))  # (B, C1*W*W, L)
    return float(patches.norm(dim=1).median())
