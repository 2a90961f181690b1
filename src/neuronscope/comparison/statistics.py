"""Streaming second moments in float64: memory constant in the number of images.

    moments = Moments.of(rows)                   # (N, C): positions x units of one batch
    moments.merge(Moments.of(more_rows))         # batches in any sizes, merged one by one
    correlation(moments_a, moments_b, cross)     # (C_a, C_b) Pearson; NaN for constant units
    linear_cka(moments_a, moments_b, cross)      # ||Cov_ab||_F^2 / (||Cov_aa||_F ||Cov_bb||_F)

Each batch is summarized about its own mean (count, mean, centred Gram matrix, and for a pair of
layers the centred cross-products) and merged with the pairwise update of Chan, Golub & LeVeque
(1979), so no digits are lost to a large common mean and batches can be summarized anywhere (a
Ray worker) and merged here.
"""
from __future__ import annotations

import numpy as np
import torch

DEAD_TOLERANCE = 1e-6
"""A unit is constant (dead) when its range over the data is at most this fraction of its
largest magnitude (at least 1): float rounding of an averaged constant stays far below it."""


class Moments:
    """One layer's units at one grid: count, mean, centred Gram matrix ``sum (x - mean)(x - mean)^T``,
    minimum and maximum of every row seen."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.gram: torch.Tensor | None = None
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None

    @classmethod
    def of(cls, rows: torch.Tensor) -> tuple[Moments, torch.Tensor]:
        """The moments of (N, C) ``rows`` (in float64) and the rows minus their mean."""
        rows = rows.double()
        moments = cls(rows.shape[1])
        moments.count, moments.mean = len(rows), rows.mean(0)
        centred = rows - moments.mean
        moments.gram, moments.low, moments.high = centred.T @ centred, rows.amin(0), rows.amax(0)
        return moments, centred

    def merge(self, other: Moments) -> None:
        """Add the rows ``other`` summarizes."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.gram = other.count, other.mean.clone(), other.gram.clone()
            self.low, self.high = other.low.clone(), other.high.clone()
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.gram += other.gram + torch.outer(delta, delta) * (self.count * other.count / total)
        self.mean += delta * (other.count / total)
        self.low, self.high = torch.minimum(self.low, other.low), torch.maximum(self.high, other.high)
        self.count = total

    def to(self, device: torch.device | str) -> Moments:
        moved = Moments(self.channels)
        moved.count = self.count
        moved.mean, moved.gram, moved.low, moved.high = (None if t is None else t.to(device) for t in
                                                         (self.mean, self.gram, self.low, self.high))
        return moved

    def covariance(self) -> np.ndarray:
        """(C, C) covariance of the units over every row seen (population normalization)."""
        return (self.gram / self.count).cpu().numpy()

    def dead(self) -> np.ndarray:
        """(C,) bool: units constant over every row seen."""
        scale = torch.maximum(self.high.abs(), self.low.abs()).clamp(min=1.0)
        return ((self.high - self.low) <= DEAD_TOLERANCE * scale).cpu().numpy()

    def state(self) -> dict[str, np.ndarray]:
        if self.count == 0:
            return {"count": np.array(0)}
        return {"count": np.array(self.count), "mean": self.mean.cpu().numpy(), "gram": self.gram.cpu().numpy(),
                "low": self.low.cpu().numpy(), "high": self.high.cpu().numpy()}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.count = int(arrays["count"])
        if self.count:
            self.mean, self.gram, self.low, self.high = (torch.from_numpy(np.array(arrays[k]))
                                                         for k in ("mean", "gram", "low", "high"))


class Cross:
    """Centred cross-products of two layers' units at one grid: ``sum (x_a - mean_a)(x_b - mean_b)^T``
    over the positions both saw; the two ``Moments`` hold the counts and means."""

    def __init__(self, a: Moments, b: Moments) -> None:
        self.a, self.b = a, b
        self.product: torch.Tensor | None = None

    def merge(self, product: torch.Tensor, a: Moments, b: Moments) -> None:
        """Add a batch's centred cross-products, whose rows ``a`` and ``b`` summarize; call it
        before ``a`` and ``b`` are merged into this pair's moments (it reads their old means)."""
        if self.a.count == 0:
            self.product = product.clone()
            return
        total = self.a.count + a.count
        correction = torch.outer(a.mean - self.a.mean, b.mean - self.b.mean) * (self.a.count * a.count / total)
        self.product = self.product + product + correction

    def covariance(self) -> np.ndarray:
        """(C_a, C_b) cross-covariance over every row seen."""
        return (self.product / self.a.count).cpu().numpy()


def correlation(a: Moments, b: Moments, cross: Cross) -> np.ndarray:
    """(C_a, C_b) Pearson correlation of every unit of a with every unit of b; rows and columns
    of constant (dead) units are NaN."""
    std_a = _std(a)
    std_b = _std(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cross.covariance() / np.outer(std_a, std_b)
    return np.clip(r, -1.0, 1.0)  # NaN stays NaN


def linear_cka(a: Moments, b: Moments, cross: Cross) -> float:
    """Linear CKA of two layers from centred covariances: ||Cov_ab||_F^2 / (||Cov_aa||_F ||Cov_bb||_F).

    1 when one layer is an orthogonal transform and scaling of the other (e.g. a permutation of
    its units), invariant to isotropic scaling, 0 when no linear relation exists; NaN when a
    layer is constant."""
    norm_a = float(np.linalg.norm(a.covariance()))
    norm_b = float(np.linalg.norm(b.covariance()))
    if norm_a == 0.0 or norm_b == 0.0:
        return float("nan")
    return float(np.linalg.norm(cross.covariance()) ** 2 / (norm_a * norm_b))


def _std(moments: Moments) -> np.ndarray:
    variance = np.clip(np.diag(moments.covariance()), 0.0, None)
    std = np.sqrt(variance)
    std[moments.dead()] = np.nan
    return std
