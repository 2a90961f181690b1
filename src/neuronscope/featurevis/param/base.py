"""What every image parameterization shares: an nn.Module whose forward returns images in [0, 1].

Each batch item is initialised from its own seed, so a batch of N items equals N renders of one
item with the same seeds (the batched-equals-sequential invariant of the render loop).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


class ImageParam(nn.Module):
    """Learnable images. ``forward()`` returns (B, C, H, W) in [0, 1]."""

    batch: int
    channels: int
    size: tuple[int, int]
    default_lr: float = 0.05
    """The learning rate the loop uses when its config leaves it unset (``lr=None``): Lucid's 0.05."""

    def forward(self) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


ParamFactory = Callable[..., ImageParam]
"""``factory(size, seeds, channels, device=..., dtype=...)`` -> an ImageParam (e.g. a class, or a
``functools.partial`` of one)."""


def seeded_normal(item_shape: Sequence[int], seeds: Sequence[int], std: float,
                  device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (len(seeds), *item_shape) tensor of N(0, std^2) draws, item i drawn from generator seed i."""
    items = []
    for seed in seeds:
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        items.append(torch.randn(tuple(item_shape), generator=generator, dtype=torch.float32) * std)
    return torch.stack(items).to(device=device, dtype=dtype)
