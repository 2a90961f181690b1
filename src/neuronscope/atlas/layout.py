"""From activation vectors to atlas cells: a 2-D layout, its normalization, and the grid.

    xy, used = layout_2d(vectors, "tsne", seed=0)       # (N, 2), and the method that ran
    unit = normalize_layout(xy)                          # [0, 1]^2, outliers clipped
    cells = grid_cells(unit, vectors, grid=8, threshold=5, attributions=attrs)

Layouts (``LAYOUTS``): t-SNE with the cosine metric (scikit-learn), UMAP with the cosine metric
(the optional ``umap-learn``, extra ``atlas``), or PCA. ``auto`` is t-SNE: on real Lite0
activations it kept neighbourhoods best (trustworthiness, ``benchmarks/atlas_layout.py``), and it
needs nothing beyond scikit-learn.
"""
from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NeuronscopeError

LAYOUTS = ("auto", "tsne", "umap", "pca")
AUTO_LAYOUT = "tsne"
"""What ``auto`` runs (chosen by ``benchmarks/atlas_layout.py``; see docs/atlas.md)."""
PERCENTILES = (1.0, 99.0)
MARGIN = 0.1


def layout_2d(vectors: torch.Tensor | np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, 2) coordinates of ``vectors`` (N, C), and the method that made them. ``umap`` without
    ``umap-learn`` installed is an error naming the extra; ``auto`` never needs it."""
    if method not in LAYOUTS:
        raise NeuronscopeError(f"unknown layout '{method}': choose one of {', '.join(LAYOUTS)}")
    data = np.asarray(vectors, dtype=np.float64)
    if data.ndim != 2 or len(data) < 3:
        raise NeuronscopeError(f"a layout needs at least 3 vectors (N, C), got shape {data.shape}")
    used = AUTO_LAYOUT if method == "auto" else method
    if used == "pca":
        from sklearn.decomposition import PCA

        return PCA(2, random_state=seed).fit_transform(data), used
    if used == "umap":
        return _umap(data, seed), used
    from sklearn.manifold import TSNE

    perplexity = float(min(50.0, (len(data) - 1) / 3))  # the recipe's 50, where the data allow it
    tsne = TSNE(2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed)
    return tsne.fit_transform(data), used


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


def require_umap() -> None:
    """An error naming the extra when umap-learn is not installed."""
    if not umap_available():
        raise NeuronscopeError("layout 'umap' needs umap-learn: pip install 'neuronscope[atlas]' "
                               "(or choose layout tsne or pca)")


def _umap(data: np.ndarray, seed: int) -> np.ndarray:
    require_umap()
    import umap

    with warnings.catch_warnings():  # "n_jobs overridden by random_state": a seeded UMAP runs on one thread
        warnings.simplefilter("ignore", UserWarning)
        reducer = umap.UMAP(n_neighbors=min(20, len(data) - 1), min_dist=0.01, metric="cosine", random_state=seed)
        return np.asarray(reducer.fit_transform(data), dtype=np.float64)


def normalize_layout(xy: np.ndarray, percentiles: tuple[float, float] = PERCENTILES, margin: float = MARGIN) -> np.ndarray:
    """Per axis: clip to the [low, high] percentiles widened by ``margin`` of their span on each
    side, then scale min-max to [0, 1] (a constant axis maps to 0.5)."""
    xy = np.asarray(xy, dtype=np.float64)
    low, high = np.percentile(xy, percentiles, axis=0)
    span = high - low
    low, high = low - margin * span, high + margin * span
    clipped = np.clip(xy, low, high)
    lo, hi = clipped.min(0), clipped.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (clipped - lo) / width, 0.5)


@dataclass
class Cells:
    """The kept cells of a G x G grid over a normalized layout, in row-major order of (y, x)."""

    grid: int
    xy: np.ndarray
    """(cells, 2) integer (x, y) of each cell; y counts up from the bottom."""
    counts: np.ndarray
    """(cells,) members per cell."""
    directions: torch.Tensor
    """(cells, C) mean activation of the members."""
    attributions: torch.Tensor | None
    """(cells, classes) mean attribution of the members."""
    members: list[np.ndarray]
    """Indices of each cell's samples."""
    assignment: np.ndarray
    """(N, 2) the (x, y) cell of every sample, kept cell or not."""

    def __len__(self) -> int:
        return len(self.counts)


def cell_of(unit_xy: np.ndarray, grid: int) -> np.ndarray:
    """(N, 2) integer cells of points in [0, 1]^2: edges ``linspace(0, 1, G + 1)``, the last bin
    closed on the right (a point at exactly 1.0 lands in cell G - 1)."""
    if grid < 1:
        raise NeuronscopeError(f"grid must be at least 1, got {grid}")
    edges = np.linspace(0.0, 1.0, grid + 1)
    return np.clip(np.searchsorted(edges, np.asarray(unit_xy), side="right") - 1, 0, grid - 1)


def grid_cells(unit_xy: np.ndarray, vectors: torch.Tensor, grid: int, threshold: int,
               attributions: torch.Tensor | None = None) -> Cells:
    """Cells of a ``grid`` x ``grid`` binning of ``unit_xy`` with more than ``threshold``
    members: their direction (mean activation), attribution (mean), count and members."""
    assignment = cell_of(unit_xy, grid)
    flat = assignment[:, 1] * grid + assignment[:, 0]
    counts = np.bincount(flat, minlength=grid * grid)
    kept = np.flatnonzero(counts > threshold)
    members = [np.flatnonzero(flat == c) for c in kept]
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    directions = torch.stack([vectors[m].mean(0) for m in members]) if members else vectors[:0]
    attr = None
    if attributions is not None:
        attributions = torch.as_tensor(attributions, dtype=torch.float32)
        attr = torch.stack([attributions[m].mean(0) for m in members]) if members else attributions[:0]
    xy = np.stack([kept % grid, kept // grid], 1) if len(kept) else np.zeros((0, 2), dtype=np.int64)
    return Cells(grid, xy, counts[kept], directions, attr, members, assignment)
