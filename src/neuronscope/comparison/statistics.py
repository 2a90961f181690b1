"""Streaming second moments in float64: memory constant in the number of images.

    moments = Moments(channels)                  # one layer at one grid
    moments.add(rows)                            # (N, C): positions x units, any number of times
    cross = Cross(moments_a, moments_b); cross.add(rows_a, rows_b)
    correlation(moments_a, moments_b, cross)     # (C_a, C_b) Pearson; NaN for constant units
    linear_cka(moments_a, moments_b, cross)      # ||Cov_ab||_F^2 / (||Cov_aa||_F ||Cov_bb||_F)

Sums are kept of the values minus a shift (each unit's mean over the first rows seen), so that
the covariance ``S_xy / n - mean_x mean_y`` does not lose its digits to a large common mean.
"""
from __future__ import annotations

import numpy as np
import torch

DEAD_TOLERANCE = 1e-6
"""A unit is constant (dead) when its range over the data is at most this fraction of its
largest magnitude (at least 1): float rounding of an averaged constant stays far below it."""


class Moments:
    """Running sums of one layer's units at one grid: count, sum, Gram matrix, minimum, maximum."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.count = 0
        self.shift: torch.Tensor | None = None
        self.total: torch.Tensor | None = None
        self.gram: torch.Tensor | None = None
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None
        self._covariance: tuple[int, np.ndarray] | None = None

    def centred(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows`` (N, C) as float64 minus the shift (set from the first rows ever given)."""
        rows = rows.double()
        if self.shift is None:
            self.shift = rows.mean(0)
        return rows - self.shift

    def add(self, rows: torch.Tensor, centred: torch.Tensor | None = None) -> None:
        """Add (N, C) rows (``centred``: the same rows from ``centred``, if already computed)."""
        y = self.centred(rows) if centred is None else centred
        low, high = rows.amin(0).double(), rows.amax(0).double()
        if self.total is None:
            self.total, self.gram, self.low, self.high = y.sum(0), y.T @ y, low, high
        else:
            self.total += y.sum(0)
            self.gram += y.T @ y
            self.low, self.high = torch.minimum(self.low, low), torch.maximum(self.high, high)
        self.count += len(rows)

    def covariance(self) -> np.ndarray:
        """(C, C) covariance of the units over every row seen (population normalization)."""
        if self._covariance is None or self._covariance[0] != self.count:
            mean = self.total / self.count
            self._covariance = (self.count, (self.gram / self.count - torch.outer(mean, mean)).cpu().numpy())
        return self._covariance[1]

    def dead(self) -> np.ndarray:
        """(C,) bool: units constant over every row seen."""
        scale = torch.maximum(self.high.abs(), self.low.abs()).clamp(min=1.0)
        return ((self.high - self.low) <= DEAD_TOLERANCE * scale).cpu().numpy()


class Cross:
    """Running cross-products of two layers' units at one grid: sum of y_a^T y_b (shifted values)."""

    def __init__(self, a: Moments, b: Moments) -> None:
        self.a, self.b = a, b
        self.product: torch.Tensor | None = None

    def add(self, centred_a: torch.Tensor, centred_b: torch.Tensor) -> None:
        """Add rows already shifted by ``a.centred`` and ``b.centred`` (the same positions, in order)."""
        part = centred_a.T @ centred_b
        self.product = part if self.product is None else self.product + part

    def covariance(self) -> np.ndarray:
        """(C_a, C_b) cross-covariance over every row seen."""
        n = self.a.count
        mean_a, mean_b = self.a.total / n, self.b.total / n
        return (self.product / n - torch.outer(mean_a, mean_b)).cpu().numpy()


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
