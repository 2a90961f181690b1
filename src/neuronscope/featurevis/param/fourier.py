"""The decorrelated Fourier parameterization (Lucid's ``param.image(fft=True, decorrelate=True)``).

Learnable real and imaginary spectra, scaled by 1/f so that i.i.d. parameters give a natural
1/f image spectrum (a whitening preconditioner), inverted with a unitary real FFT, divided by 4
(Lucid's constant), then mapped through the colour decorrelation and a sigmoid.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .base import ImageParam, seeded_normal
from .color import to_valid_rgb


def frequency_scale(size: tuple[int, int], decay: float = 1.0) -> torch.Tensor:
    """1 / max(|f|, 1/max(H, W))^decay over the rfft2 grid, shape (H, W//2 + 1)."""
    height, width = size
    fy = torch.fft.fftfreq(height).view(-1, 1)
    fx = torch.fft.rfftfreq(width).view(1, -1)
    magnitude = torch.sqrt(fx**2 + fy**2)
    return 1.0 / magnitude.clamp(min=1.0 / max(height, width)) ** decay


@dataclass(frozen=True)
class Spectrum:
    """How a Fourier image's learnable spectrum starts and is scaled."""

    std: float = 0.01
    """Standard deviation of the initial i.i.d. normal real and imaginary parts."""
    decay: float = 1.0
    """The spectrum is scaled by 1/f^decay (Lucid's ``decay_power``)."""


class FourierImage(ImageParam):
    """Images parameterized by their (1/f scaled) spectrum, per channel."""

    def __init__(self, size: tuple[int, int], seeds: Sequence[int], channels: int = 3, decorrelate: bool = True,
                 squash: str = "sigmoid", spectrum: Spectrum = Spectrum(), device=None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.batch, self.channels, self.size = len(seeds), channels, tuple(size)
        self.decorrelate, self.squash = decorrelate, squash
        height, width = size
        self.spectrum = nn.Parameter(seeded_normal((channels, height, width // 2 + 1, 2), seeds, spectrum.std, device,
                                                   dtype))
        self.register_buffer("scale", frequency_scale(self.size, spectrum.decay).to(self.spectrum.device, dtype),
                             persistent=False)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        u = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") / 4.0
        return to_valid_rgb(u, self.decorrelate, self.squash)
