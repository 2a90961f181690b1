"""Class factors: NMF of an all-classes attribution into a few spatial maps, each supporting a set of
classes (Building Blocks' multi-class spatial attribution; ``factorization.nmf`` does the maths)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import NeuronscopeError
from ..factorization import nmf
from ..images import (
    SheetDisplay,
    contact_sheet,
    factor_colors,
    factor_overlay,
    heat_overlay,
    listing,
    save_sheet,
)
from ..manifest import derived_manifest
from .hidden import Attribution


@dataclass
class ClassFactors(SheetDisplay):
    """NMF of an all-classes attribution: k factors, each a spatial map and a set of classes."""

    maps: np.ndarray
    """(k, H, W) where each factor's evidence lies."""
    classes: np.ndarray
    """(k, classes) how much each factor supports each class."""
    labels: list[str]
    image: torch.Tensor | None = None
    """(3, H, W) the attributed input, when known (``class_factors`` keeps it)."""
    manifest: dict = field(default_factory=dict, repr=False)
    """The attribution's model, image and layer, k, seed and each factor's top classes (set by ``class_factors``)."""

    def __repr__(self) -> str:
        factors = "; ".join(f"{f}: {listing([label for _, label in self.top(f, 3)], 2)}" for f in range(len(self.maps)))
        return f"ClassFactors({len(self.maps)} factors of {len(self.labels)} classes; {factors})"

    def overlay(self, image: torch.Tensor) -> torch.Tensor:
        """(3, H, W): brightness = attribution magnitude, hue = factor (the image is (3, H, W))."""
        return factor_overlay(image, torch.from_numpy(self.maps), factor_colors(len(self.maps)))

    def sheet(self, image: torch.Tensor | None = None) -> Image.Image:
        """The input (default: the attributed one; mid grey if unknown), the factors' overlay, and each
        factor's map in its colour, captioned with the classes it supports most."""
        k, (height, width) = len(self.maps), self.maps.shape[1:]
        image = image if image is not None else self.image
        image = image if image is not None else torch.full((3, 32 * height, 32 * width), 0.5)
        maps = [heat_overlay(image, torch.from_numpy(m), c) for m, c in zip(self.maps, factor_colors(k))]
        captions = [", ".join(label for _, label in self.top(f, 3)) for f in range(k)]
        return contact_sheet([image, self.overlay(image), *maps], ["input", f"{k} factors: hue = factor", *captions],
                             columns=k + 2)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)

    def top(self, factor: int, n: int = 5) -> list[tuple[int, str]]:
        """The n classes the factor supports most: (index, label)."""
        order = np.argsort(-self.classes[factor])[:n]
        return [(int(i), self.labels[i]) for i in order]


def class_factors(attribution: Attribution, k: int = 2, seed: int = 0, negatives: str = "clip") -> ClassFactors:
    """Factor a (classes, C, H, W) attribution's spatial maps, as a (positions x classes) matrix,
    into k parts (Building Blocks' multi-class spatial attribution)."""
    spatial = attribution.spatial  # (classes, H, W)
    classes, height, width = spatial.shape
    if not 1 <= k <= min(classes, height * width):
        raise NeuronscopeError(f"k must be in 1..{min(classes, height * width)} for {height}x{width} positions, got {k}")
    found = nmf(spatial.permute(1, 2, 0), k, negatives=negatives, seed=seed)  # loadings (H, W, k)
    loadings = found.components[:, :classes]  # with split: the positive parts only
    factors = ClassFactors(np.moveaxis(found.loadings, -1, 0), loadings, list(attribution.targets), attribution.image)
    factors.manifest = derived_manifest("class factors", attribution.origin, image=attribution.origin.get("image"), layer=attribution.layer, k=k,
                                        seed=seed, negatives=negatives, error=found.error,
                                        top_classes=[[label for _, label in factors.top(f)] for f in range(k)])
    return factors
