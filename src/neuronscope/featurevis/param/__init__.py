"""Image parameterizations: how the optimized image is represented.

``pixel``: one value per pixel; ``fourier``: a 1/f-scaled spectrum in a decorrelated colour
space (Lucid's default); ``maco``: phase only, with a fixed natural-image magnitude spectrum.
All return (B, C, H, W) images in [0, 1] for any channel count, one seed per batch item.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from ...errors import NeuronscopeError
from .base import ImageParam, ParamFactory
from .fourier import FourierImage, Spectrum
from .pixel import PixelImage

PARAMS = ("fourier", "pixel", "maco")


def check_param(kind: str | ParamFactory) -> str | ParamFactory:
    """``kind`` if it names a parameterization or is a factory of one; otherwise an error listing them."""
    if isinstance(kind, str) and kind in PARAMS or not isinstance(kind, str) and callable(kind):
        return kind
    raise NeuronscopeError(f"unknown parameterization '{kind}': choose one of {', '.join(PARAMS)}, or give a factory "
                           "(size, seeds, channels, device=, dtype=) -> ImageParam")


def make_param(kind: str | ParamFactory, size: tuple[int, int], seeds: Sequence[int], channels: int = 3,
               decorrelate: bool | None = None, squash: str | None = None, device=None,
               dtype: torch.dtype = torch.float32) -> ImageParam:
    """Build a parameterization by name (see ``PARAMS``) or with a factory (e.g. a class, or a
    ``functools.partial`` of one), called as ``kind(size, seeds, channels, device=, dtype=)``.

    ``decorrelate`` and ``squash`` None mean the parameterization's default (True and
    ``"sigmoid"`` for fourier and pixel). MaCo has neither option (its magnitude spectrum is
    fixed and it always recorrelates colours and squashes with a sigmoid), so giving either one
    for it is an error rather than silently ignored; so is giving one with a factory, which
    sets its own.
    """
    given = [name for name, value in (("decorrelate", decorrelate), ("squash", squash)) if value is not None]
    if not isinstance(check_param(kind), str):
        if given:
            raise NeuronscopeError(f"a param factory makes its own images: {' and '.join(given)} apply to the named "
                                   "parameterizations fourier and pixel; leave them unset")
        image = kind(size, seeds, channels, device=device, dtype=dtype)
        if not isinstance(image, ImageParam):
            raise NeuronscopeError(f"the param factory returned {type(image).__name__}, not an ImageParam")
        return image
    if kind == "maco":
        if given:
            raise NeuronscopeError(f"the maco parameterization has no {' or '.join(given)} option "
                                   "(it always recorrelates colours and squashes with a sigmoid); leave it unset, "
                                   "or choose fourier or pixel")
        from .maco import MacoImage

        return MacoImage(size, seeds, channels, device=device, dtype=dtype)
    options = {"decorrelate": True if decorrelate is None else decorrelate,
               "squash": "sigmoid" if squash is None else squash}
    image = FourierImage if kind == "fourier" else PixelImage
    return image(size, seeds, channels, **options, device=device, dtype=dtype)


__all__ = ["PARAMS", "FourierImage", "ImageParam", "ParamFactory", "PixelImage", "Spectrum", "check_param",
           "make_param"]
