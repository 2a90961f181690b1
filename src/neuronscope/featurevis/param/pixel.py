"""The naive parameterization: one learnable value per pixel and channel."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import ImageParam, seeded_normal
from .color import to_valid_rgb


class PixelImage(ImageParam):
    """Pixels initialised N(0, 0.01^2), mapped to RGB by ``to_valid_rgb``."""

    def __init__(self, size: tuple[int, int], seeds: Sequence[int], channels: int = 3, decorrelate: bool = True,
                 squash: str = "sigmoid", std: float = 0.01, device=None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.batch, self.channels, self.size = len(seeds), channels, tuple(size)
        self.decorrelate, self.squash = decorrelate, squash
        self.pixels = nn.Parameter(seeded_normal((channels, *size), seeds, std, device, dtype))

    def forward(self) -> torch.Tensor:
        return to_valid_rgb(self.pixels, self.decorrelate, self.squash)
