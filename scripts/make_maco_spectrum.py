"""Compute the natural-image magnitude spectrum that MaCo keeps fixed, from the bundled photos.

Writes ``src/neuronscope/assets/maco_spectrum.npz`` (run from anywhere; ``--out`` to write elsewhere):

    python scripts/make_maco_spectrum.py

How: every photo gives the same number of deterministic square crops (three scales: 100%, 80% and
60% of its short side, each on a 3 x 3 grid of positions), resized to 224 x 224 (bicubic,
antialiased). Each crop, centred on grey (``rgb - 0.5``, the sigmoid's midpoint, so the DC term
measures the offset from grey), is Fourier-transformed (``rfft2``, ``norm="ortho"``, no window, as
MaCo does) and the magnitudes are averaged: the mean of ``|rfft2|`` over all crops, like MaCo's
reference code (not the square root of the mean power). The mean is then averaged with its copy at
(-fy, fx), which is exactly what adding every crop's left-right mirror image would give (a mirror
image's magnitude at (fy, fx) is the original's at (-fy, fx)), at half the cost. Two spectra of
shape (3, 224, 113) are stored as float16:

* ``decorrelated``: of the crops mapped into the decorrelated colour basis of
  ``neuronscope.featurevis.param.color`` (``u = M^-1 rgb``). MaCo builds its 3-channel images in that basis and
  recorrelates afterwards, so this is what a 3-channel ``MacoImage`` uses.
* ``rgb``: of the plain RGB channels; their mean is what images with another channel count use.

Photos used: chelsea, coffee, astronaut, rocket, motorcycle, china, flower. Left out:

* ``horse``: a binary silhouette, all hard edges, not a photo of a scene;
* ``camera`` and ``coins``: greyscale, so they carry no colour: their colour-opponent channels have
  about 0.07 of the luminance magnitude, against 0.6 to 2 in the colour photos, and would shrink
  those channels of the decorrelated spectrum;
* ``hubble``: a sparse field of small galaxies on black sky (mean value 0.07), not a scene of
  surfaces and objects like the photos MaCo aims to resemble.

Everything is deterministic: fixed crop boxes, no random numbers.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuronscope import data
from neuronscope.featurevis.param.color import COLOR_MATRIX

REFERENCE_SIZE = 224
PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle", "china", "flower")
SCALES = (1.0, 0.8, 0.6)
GRID = 3
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "neuronscope" / "assets" / "maco_spectrum.npz"


def crop_boxes(height: int, width: int, scales: Sequence[float] = SCALES, grid: int = GRID) -> list[tuple[int, int, int]]:
    """Square crops (top, left, side): per scale, ``grid`` x ``grid`` evenly spaced positions."""
    boxes = []
    for scale in scales:
        side = max(1, round(scale * min(height, width)))
        tops = np.linspace(0, height - side, grid).round().astype(int)
        lefts = np.linspace(0, width - side, grid).round().astype(int)
        boxes += [(int(top), int(left), side) for top in tops for left in lefts]
    return boxes


def photo_crops(image: np.ndarray, size: int = REFERENCE_SIZE, scales: Sequence[float] = SCALES,
                grid: int = GRID) -> torch.Tensor:
    """All crops of one (H, W, 3) photo, resized: (N, 3, size, size)."""
    chw = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1).contiguous()
    by_side: dict[int, list[torch.Tensor]] = {}
    for top, left, side in crop_boxes(image.shape[0], image.shape[1], scales, grid):
        by_side.setdefault(side, []).append(chw[:, top:top + side, left:left + side])
    return torch.cat([
        F.interpolate(torch.stack(crops), size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        for crops in by_side.values()
    ])


def to_decorrelated(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, ...) RGB values (or their spectra: the map is linear) to the decorrelated colour
    basis: u = M^-1 rgb."""
    inverse = torch.linalg.inv(COLOR_MATRIX.double()).to(rgb.dtype)
    return torch.einsum("ij,bj...->bi...", inverse, rgb)


def magnitude_sums(crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over the batch of |rfft2| (orthonormal), RGB and decorrelated, as float64: (3, H, W//2 + 1)."""
    spectra = torch.fft.rfft2(crops, norm="ortho")
    return spectra.abs().sum(dim=0).double(), to_decorrelated(spectra).abs().sum(dim=0).double()


def mirror_average(magnitude: torch.Tensor) -> torch.Tensor:
    """Average a (C, H, W//2 + 1) magnitude with itself at (-fy, fx): the effect of mirrored copies."""
    negative = (-torch.arange(magnitude.shape[-2])) % magnitude.shape[-2]
    return (magnitude + magnitude[..., negative, :]) / 2


def compute_spectrum(size: int = REFERENCE_SIZE, names: Sequence[str] = PHOTO_NAMES,
                     scales: Sequence[float] = SCALES, grid: int = GRID) -> dict[str, np.ndarray]:
    """The mean magnitude spectra and their metadata, as the arrays stored in the npz."""
    total_rgb = total_decorrelated = 0.0
    count = 0
    for name in names:
        crops = photo_crops(data.photo(name), size, scales, grid) - 0.5
        rgb, decorrelated = magnitude_sums(crops)
        total_rgb, total_decorrelated = total_rgb + rgb, total_decorrelated + decorrelated
        count += crops.shape[0]
    return {
        "decorrelated": mirror_average(total_decorrelated / count).numpy().astype(np.float16),
        "rgb": mirror_average(total_rgb / count).numpy().astype(np.float16),
        "size": np.array([size, size]),
        "crops": np.array(count),
        "mirrored": np.array(True),
        "photos": np.array(list(names)),
        "scales": np.array(list(scales)),
        "grid": np.array(grid),
        "norm": np.array("ortho"),
    }


def write_spectrum(path: str | Path = DEFAULT_OUT, **options) -> Path:
    """Compute the spectrum (``options`` as for ``compute_spectrum``) and save it as a compressed npz."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **compute_spectrum(**options))
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    path = write_spectrum(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
