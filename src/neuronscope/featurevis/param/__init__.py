"""Image parameterizations: how the optimized image is represented.

``pixel``: one value per pixel; ``fourier``: a 1/f-scaled spectrum in a decorrelated colour
space (Lucid's default); ``maco``: phase only, with a fixed natural-image magnitude spectrum.
All return (B, C, H, W) images in [0, 1] for any channel count, one seed per batch item.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ...errors import NeuronscopeError
from .base import ImageParam
from .fourier import FourierImage
from .pixel import PixelImage

PARAMS = ("fourier", "pixel", "maco")


def check_param(kind: str) -> str:
    """``kind`` if it names a parameterization; otherwise an error listing them."""
    if kind not in PARAMS:
        raise NeuronscopeError(f"unknown parameterization '{kind}': choose one of {', '.join(PARAMS)}")
    return kind


def make_param(kind: str, size: tuple[int, int], seeds: Sequence[int], channels: int = 3,
               decorrelate: bool = True, squash: str = "sigmoid", device=None,
               dtype: torch.dtype = torch.float32) -> ImageParam:
    """Build a parameterization by name (see ``PARAMS``)."""
    if check_param(kind) == "fourier":
        return FourierImage(size, seeds, channels, decorrelate=decorrelate, squash=squash, device=device, dtype=dtype)
    if kind == "pixel":
        return PixelImage(size, seeds, channels, decorrelate=decorrelate, squash=squash, device=device, dtype=dtype)
    from .maco import MacoImage  # kind == "maco"

    return MacoImage(size, seeds, channels, device=device, dtype=dtype)


__all__ = ["PARAMS", "FourierImage", "ImageParam", "PixelImage", "check_param", "make_param"]
