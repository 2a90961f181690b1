"""Matrix factorization for every technique (scikit-learn does the maths).

``nmf(values, k)`` factors signed data whose last axis is channels into k non-negative parts: it
gives each row's loadings, the k components over the channels and the relative error. NMF needs
non-negative input; ``negatives`` says what happens to negative values: ``"clip"`` sets them to 0
(right for evidence *for* something), ``"split"`` appends the negated negative part as extra
channels, so nothing is lost and components say which sign they use (a channel c < C is the
positive part, c >= C the negative part of channel c - C; ``Factorization.directions`` folds them
back).

``ChannelReducer`` runs any scikit-learn decomposition (NMF by default; PCA, FastICA, ...) on N-D
tensors whose last axis is channels: it flattens everything else into rows, factors, and reshapes
back (Lucid's channel reducer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sklearn.decomposition
import torch

from .errors import NeuronscopeError

NEGATIVES = ("clip", "split")


@dataclass(frozen=True)
class Factorization:
    """``values ~ loadings @ components`` (after clipping or splitting the negatives)."""

    loadings: np.ndarray
    """(..., k) each row's non-negative weight on each part, in the shape of the values."""
    components: np.ndarray
    """(k, C) the parts over the channels; (k, 2C) with ``split`` (positive parts, then negative parts)."""
    error: float
    """Relative Frobenius error of the factors on the (clipped or split) values."""
    negatives: str

    @property
    def directions(self) -> np.ndarray:
        """(k, C) each part as a signed direction over the channels: with ``split``, its positive part
        minus its negative part; with ``clip``, the components themselves."""
        if self.negatives == "clip":
            return self.components
        channels = self.components.shape[1] // 2
        return self.components[:, :channels] - self.components[:, channels:]


def nmf(values: np.ndarray | torch.Tensor, k: int, *, negatives: str = "clip", seed: int = 0) -> Factorization:
    """NMF of ``values`` (..., channels) into ``k`` parts, negatives clipped or split (see the module)."""
    reducer = ChannelReducer(k, "NMF", negatives=negatives, seed=seed)
    loadings = reducer.fit_transform(values)
    return Factorization(loadings, reducer.components, reducer.reconstruction_error(values, loadings), negatives)


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

    def reconstruction_error(self, values: np.ndarray | torch.Tensor, loadings: np.ndarray | None = None) -> float:
        """Relative Frobenius error of the fitted factors on ``values`` (``loadings``: those that
        ``fit_transform`` gave for these values, so they need not be found again)."""
        rows, _ = self._rows(values)
        if loadings is None:
            loadings = self.transform(values)
        approximation = loadings.reshape(len(rows), -1) @ self.components
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
