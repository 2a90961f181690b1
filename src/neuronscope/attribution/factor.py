"""Matrix factorization of activations and attributions (scikit-learn does the maths).

``ChannelReducer`` runs any scikit-learn decomposition (NMF by default; PCA, FastICA, ...) on
N-D tensors whose last axis is channels: it flattens everything else into rows, factors, and
reshapes back. NMF needs non-negative input; ``negatives`` says what happens to negative values:
``"clip"`` sets them to 0 (the default; right for evidence *for* something), ``"split"`` appends
the negated negative part as extra channels, so nothing is lost and components can say which
sign they use (a channel c < C is the positive part, c >= C the negative part of channel c - C).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sklearn.decomposition
import torch
from PIL import Image

from ..errors import NeuronscopeError
from ..images import (
    SheetDisplay,
    contact_sheet,
    factor_colors,
    factor_overlay,
    heat_overlay,
    listing,
)

NEGATIVES = ("clip", "split")


class ChannelReducer:
    """Fit a decomposition on (..., channels) arrays; ``transform`` gives (..., components)."""

    def __init__(self, n_components: int, method: str = "NMF", negatives: str = "clip", seed: int = 0, **options) -> None:
        if n_components < 1:
            raise NeuronscopeError(f"n_components must be at least 1, got {n_components}")
        if negatives not in NEGATIVES:
            raise NeuronscopeError(f"unknown negatives '{negatives}': choose one of {', '.join(NEGATIVES)}")
        cls = getattr(sklearn.decomposition, method, None)
        if cls is None:
            choices = ", ".join(n for n in dir(sklearn.decomposition) if n[0].isupper())
            raise NeuronscopeError(f"unknown decomposition '{method}': scikit-learn has {choices}")
        self.n_components, self.method, self.negatives = n_components, method, negatives
        defaults = {"init": "nndsvda", "max_iter": 1000} if method == "NMF" else {}
        self._model = cls(n_components=n_components, random_state=seed, **{**defaults, **options})

    @property
    def components(self) -> np.ndarray:
        """(components, channels) the directions found (with ``split``: 2 x channels)."""
        return self._model.components_

    def fit_transform(self, values: np.ndarray | torch.Tensor) -> np.ndarray:
        rows, shape = self._rows(values)
        if self.n_components > rows.shape[1]:
            raise NeuronscopeError(f"{self.n_components} components asked of only {rows.shape[1]} channels")
        return self._model.fit_transform(rows).reshape(*shape[:-1], self.n_components)

    def transform(self, values: np.ndarray | torch.Tensor) -> np.ndarray:
        rows, shape = self._rows(values)
        return self._model.transform(rows).reshape(*shape[:-1], self.n_components)

    def reconstruction_error(self, values: np.ndarray | torch.Tensor) -> float:
        """Relative Frobenius error of the fitted factors on ``values``."""
        rows, _ = self._rows(values)
        approximation = self._model.inverse_transform(self._model.transform(rows))
        return float(np.linalg.norm(rows - approximation) / max(np.linalg.norm(rows), 1e-12))

    def _rows(self, values: np.ndarray | torch.Tensor) -> tuple[np.ndarray, tuple[int, ...]]:
        array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        array = array.astype(np.float64)
        if self.method == "NMF":
            if self.negatives == "split":
                array = np.concatenate([np.maximum(array, 0), np.maximum(-array, 0)], axis=-1)
            else:
                array = np.maximum(array, 0)
        return array.reshape(-1, array.shape[-1]), array.shape


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

    def top(self, factor: int, n: int = 5) -> list[tuple[int, str]]:
        """The n classes the factor supports most: (index, label)."""
        order = np.argsort(-self.classes[factor])[:n]
        return [(int(i), self.labels[i]) for i in order]


def class_factors(attribution, k: int = 2, seed: int = 0, negatives: str = "clip") -> ClassFactors:
    """Factor a (classes, C, H, W) attribution's spatial maps, as a (positions x classes) matrix,
    into k parts (Building Blocks' multi-class spatial attribution)."""
    spatial = attribution.spatial  # (classes, H, W)
    classes, height, width = spatial.shape
    if not 1 <= k <= min(classes, height * width):
        raise NeuronscopeError(f"k must be in 1..{min(classes, height * width)} for {height}x{width} positions, got {k}")
    reducer = ChannelReducer(k, "NMF", negatives=negatives, seed=seed)
    maps = reducer.fit_transform(spatial.permute(1, 2, 0))  # (H, W, k)
    loadings = reducer.components
    if negatives == "split":
        loadings = loadings[:, :classes]
    return ClassFactors(np.moveaxis(maps, -1, 0), loadings, list(attribution.targets), attribution.image)
