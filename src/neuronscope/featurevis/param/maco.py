"""MaCo: magnitude-constrained images (Fel et al., NeurIPS 2023).

Only the phase of the image's Fourier spectrum is learned; its magnitude stays fixed at the mean
magnitude spectrum of natural photos (``assets/maco_spectrum.npz``, made by
``scripts/make_maco_spectrum.py``). As in the reference code, per image: the phase is standardised
(zero mean, unit std), combined with the magnitude (``r cos(phi) + i r sin(phi)``), inverted with
``irfft2``, the result standardised again, then for 3 channels recorrelated from the decorrelated
colour basis (the stored 3-channel spectrum is measured in that basis) and passed through a sigmoid.
"""
from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import NeuronscopeError
from .base import ImageParam, seeded_normal
from .color import to_valid_rgb

EPSILON = 1e-5
NATURAL_CONTRAST = 3.0
"""A ``contrast`` that gives images the pixel standard deviation of natural photos: 0.25 at the
start (the bundled photos: median 0.245), against 0.11 with the reference code's 1."""


@functools.lru_cache(maxsize=1)
def load_spectrum() -> dict[str, np.ndarray]:
    """The shipped spectra, read once: ``decorrelated`` and ``rgb`` (3, h, w//2 + 1) float32
    magnitudes of h x w images, and ``size`` (h, w)."""
    resource = importlib.resources.files("neuronscope") / "assets" / "maco_spectrum.npz"
    with resource.open("rb") as handle, np.load(handle) as stored:
        spectra = {key: stored[key].astype(np.float32) for key in ("decorrelated", "rgb")}
        spectra["size"] = stored["size"].astype(np.int64)
    for array in spectra.values():
        array.setflags(write=False)
    return spectra


def resample_magnitude(magnitude: torch.Tensor, size: tuple[int, int],
                       source_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A (C, h, w//2 + 1) magnitude spectrum of an h x w image, for an H x W image: (C, H, W//2 + 1).

    ``source_size`` is (h, w); by default w is taken to be even, 2 (w//2 + 1) - 2.

    Each target bin takes the source's value at the same frequency in cycles per pixel (bilinear,
    over the frequency-ordered source grid; beyond the source's highest frequencies the border value).
    The DC term is handled apart so that it does not leak into the lowest frequencies: the source DC
    is replaced by the mean of its nearest neighbours for the interpolation, and the target DC is the
    source DC times sqrt(H W / (h w)), which keeps the DC's share of the energy (mean^2 against
    variance) the same at every size.
    """
    _, rows, columns = magnitude.shape
    source_width = 2 * (columns - 1) if source_size is None else int(source_size[1])
    height, width = size
    source = magnitude.clone()
    source[:, 0, 0] = (source[:, 0, 1] + source[:, 1, 0] + source[:, -1, 0]) / 3
    source = torch.fft.fftshift(source, dim=1)  # rows from the most negative frequency up
    fy = torch.fft.fftfreq(height, dtype=torch.float64)
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)
    row = fy * rows + rows // 2
    column = fx * source_width
    grid_y = (2 * row / (rows - 1) - 1).view(-1, 1).expand(height, fx.numel())
    grid_x = (2 * column / (columns - 1) - 1).view(1, -1).expand(height, fx.numel())
    grid = torch.stack([grid_x, grid_y], dim=-1).to(magnitude.dtype)[None]
    resampled = F.grid_sample(source[None], grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
    resampled[:, 0, 0] = magnitude[:, 0, 0] * ((height * width) / (rows * source_width)) ** 0.5
    return resampled


def maco_magnitude(size: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """The fixed magnitude for (channels, H, W) images: (channels, H, W//2 + 1).

    3 channels: the decorrelated-basis spectrum; any other count: the mean of the three RGB spectra,
    repeated."""
    spectra = load_spectrum()
    if channels == 3:
        magnitude = torch.tensor(spectra["decorrelated"])
    else:
        magnitude = torch.tensor(spectra["rgb"]).mean(dim=0, keepdim=True).repeat(channels, 1, 1)
    return resample_magnitude(magnitude, size, tuple(spectra["size"]))


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit standard deviation over all but the first (batch) dimension."""
    dims = tuple(range(1, x.dim()))
    x = x - x.mean(dim=dims, keepdim=True)
    return x / (x.std(dim=dims, keepdim=True, correction=0) + EPSILON)


class MacoImage(ImageParam):
    """Images whose Fourier magnitude is fixed to that of natural photos; only the phase is learned.

    ``std`` is the standard deviation of the initial phase (the reference uses 1). The phase is
    standardised before use, so ``std`` does not change the initial image; it sets how far one
    optimiser step moves the phase (a larger ``std`` makes the same step relatively smaller).
    ``contrast`` scales the standardised image before the colours and the sigmoid:
    ``NATURAL_CONTRAST`` (the default) gives the pixel contrast of photos, 1 the reference code's
    low-contrast haze (pixel std 0.11). Chosen by measurement (docs/rendering.md): on 100 class
    visualizations, 3 transfers to Lite2 better (90 % top-1 against 84 %) and survives crops as well.
    """

    default_lr = 1.0
    """Phases need large steps (Lucid's 0.05 barely moves them)."""

    def __init__(self, size: tuple[int, int], seeds: Sequence[int], channels: int = 3, device=None,
                 std: float = 1.0, dtype: torch.dtype = torch.float32, contrast: float = NATURAL_CONTRAST) -> None:
        super().__init__()
        size, seeds = _check(size, seeds, channels, std)
        if not contrast > 0:
            raise NeuronscopeError(f"MacoImage contrast must be positive, got {contrast!r}")
        self.contrast = float(contrast)
        self.batch, self.channels, self.size = len(seeds), channels, size
        height, width = size
        self.phase = nn.Parameter(seeded_normal((channels, height, width // 2 + 1), seeds, std, device, dtype))
        self.register_buffer("magnitude", maco_magnitude(size, channels).to(self.phase.device, dtype), persistent=False)

    def spatial(self) -> torch.Tensor:
        """The standardised (B, C, H, W) image before colour recorrelation and the sigmoid.

        Its spectrum's magnitude is proportional to ``magnitude``, except in the fx = 0 and
        Nyquist columns, which ``irfft2`` makes Hermitian, and at DC, less the removed mean."""
        phase = standardize(self.phase)
        spectrum = torch.complex(self.magnitude * torch.cos(phase), self.magnitude * torch.sin(phase))
        return standardize(torch.fft.irfft2(spectrum, s=self.size, norm="ortho"))

    def forward(self) -> torch.Tensor:
        return to_valid_rgb(self.contrast * self.spatial(), decorrelate=True, squash="sigmoid")


def _check(size, seeds, channels, std) -> tuple[tuple[int, int], list[int]]:
    """Validated (size, seeds), or a NeuronscopeError naming the bad argument."""
    try:
        height, width = (int(s) for s in size)
        valid_size = (height, width) == tuple(size) and height > 0 and width > 0
    except (TypeError, ValueError):
        valid_size = False
    if not valid_size:
        raise NeuronscopeError(f"MacoImage size must be two positive integers (height, width), got {size!r}")
    seeds = list(seeds)
    if not seeds:
        raise NeuronscopeError("MacoImage needs at least one seed (one image per seed)")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise NeuronscopeError(f"MacoImage channels must be a positive integer, got {channels!r}")
    if not std > 0:
        raise NeuronscopeError(f"MacoImage std must be positive, got {std!r}")
    return (height, width), seeds
