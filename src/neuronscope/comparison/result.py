"""`UnitMatches`: how the units and layers of two models correspond, as plain arrays and names.

Everything is indexed by the layer lists: ``cka[i, j]`` compares ``layers_a[i]`` with
``layers_b[j]``; ``correlations[(layer_a, layer_b)]`` is the (C_a, C_b) Pearson correlation of
every unit pair. ``save`` writes ``matches.npz`` (the arrays) and ``matches.json`` (names,
depths, per pair CKA and mean best-match correlation, per unit its best matches: readable,
and what ``load`` needs besides the arrays).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuronscopeError, did_you_mean
from ..images import SheetDisplay
from ..manifest import write_json, write_npz
from ..models.depth import nearest_depth
from .summary import FORMAT, summarize

ARRAYS = "matches.npz"
SUMMARY = "matches.json"


@dataclass
class UnitMatches(SheetDisplay):
    """The result of ``match_units``: per pair of layers (A's, B's) the correlation of every unit
    with every unit and the layers' linear CKA; per unit its best matches in each layer of the
    other model. Dead units (constant over the data) have NaN correlations and are never matched."""

    model_a: str
    model_b: str
    layers_a: list[str]
    layers_b: list[str]
    depth_a: np.ndarray
    """(La,) relative depth of each layer of A in [0, 1] (``Model.depth``)."""
    depth_b: np.ndarray
    channels_a: list[int]
    channels_b: list[int]
    cka: np.ndarray
    """(La, Lb) linear CKA of every pair of layers."""
    grids: np.ndarray
    """(La, Lb, 2) the (height, width) grid of relative positions each pair was compared on."""
    correlations: dict[tuple[str, str], np.ndarray]
    """(layer_a, layer_b) -> (C_a, C_b) float32 Pearson correlation; NaN rows/columns for dead units."""
    dead_a: dict[str, list[int]]
    """Per layer of A, the channels constant over the data (at the grid of some pair)."""
    dead_b: dict[str, list[int]]
    images: int
    source: str = ""
    top: int = 5
    """How many best matches per unit the summary lists."""
    manifest: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        dead = sum(map(len, self.dead_a.values())) + sum(map(len, self.dead_b.values()))
        best = np.nanmax(self.cka, axis=1) if np.isfinite(self.cka).any() else [float("nan")]
        return (f"UnitMatches({self.model_a} ({len(self.layers_a)} layers) vs {self.model_b} ({len(self.layers_b)} layers), "
                f"{self.images} images, {dead} dead units, best CKA per layer of A "
                f"{' '.join(f'{v:.2f}' for v in best)})")

    # --- reading ---------------------------------------------------------------------------

    def correlation(self, layer_a: str, layer_b: str) -> np.ndarray:
        """(C_a, C_b) correlation of every unit of ``layer_a`` (of A) with every unit of ``layer_b`` (of B)."""
        return self.correlations[(self._name(layer_a, self.layers_a, self.model_a),
                                  self._name(layer_b, self.layers_b, self.model_b))]

    def best(self, layer_a: str, layer_b: str, k: int | None = None,
             reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Each unit's ``k`` best matches (default ``top``), best first: (units, k) channel indices
        and correlations. For the units of ``layer_a`` among those of ``layer_b``; with
        ``reverse``, for the units of ``layer_b`` among those of ``layer_a``. Index -1 and NaN
        where a unit is dead or fewer live units remain."""
        r = self.correlation(layer_a, layer_b)
        return best_matches(r.T if reverse else r, k or self.top)

    def matches(self, unit: str, k: int | None = None, side: str = "a") -> dict[str, list[tuple[int, float]]]:
        """The best matches of one unit (``"blocks.4.2:17"``) of model ``side`` (``"a"`` or ``"b"``),
        in each layer of the other model: layer -> [(channel, correlation), ...], best first."""
        if side not in ("a", "b"):
            raise NeuronscopeError(f"side must be 'a' or 'b', got {side!r}")
        model = side
        layer, _, channel = unit.rpartition(":")
        own, other = (self.layers_a, self.layers_b) if model == "a" else (self.layers_b, self.layers_a)
        layer = self._name(layer, own, self.model_a if model == "a" else self.model_b)
        count = (self.channels_a if model == "a" else self.channels_b)[own.index(layer)]
        if not channel.isdigit() or int(channel) >= count:
            raise NeuronscopeError(f"give a unit as layer:channel with a channel in 0..{count - 1}, got '{unit}'")
        found = {}
        for name in other:
            pair = (layer, name) if model == "a" else (name, layer)
            index, values = self.best(*pair, k=k, reverse=model == "b")
            found[name] = [(int(i), float(v)) for i, v in zip(index[int(channel)], values[int(channel)]) if i >= 0]
        return found

    @property
    def mean_best(self) -> np.ndarray:
        """(La, Lb) for each pair, the mean over the live units of A's layer of their best
        correlation with a unit of B's layer."""
        return self._mean_best(reverse=False)

    @property
    def mean_best_reverse(self) -> np.ndarray:
        """(La, Lb) the same for the live units of B's layer, matched among A's layer."""
        return self._mean_best(reverse=True)

    def matched_layer(self, layer_a: str) -> str:
        """The layer of B (among ``layers_b``) nearest in relative depth to ``layer_a`` of A."""
        depth = self.depth_a[self.layers_a.index(self._name(layer_a, self.layers_a, self.model_a))]
        return nearest_depth(dict(zip(self.layers_b, map(float, self.depth_b))), float(depth))

    def most_similar_layer(self, layer: str, side: str = "a") -> tuple[str, float] | None:
        """The layer of the other model with the highest linear CKA to ``layer`` of model ``side``
        (``"a"`` or ``"b"``), and that CKA; None when every CKA of ``layer`` is undefined (a constant layer)."""
        if side not in ("a", "b"):
            raise NeuronscopeError(f"side must be 'a' or 'b', got {side!r}")
        model = side
        own, other = (self.layers_a, self.layers_b) if model == "a" else (self.layers_b, self.layers_a)
        i = own.index(self._name(layer, own, self.model_a if model == "a" else self.model_b))
        row = self.cka[i] if model == "a" else self.cka[:, i]
        if not np.isfinite(row).any():
            return None
        best = int(np.nanargmax(row))
        return other[best], float(row[best])

    # --- pictures --------------------------------------------------------------------------

    def heatmap(self):
        """Linear CKA and mean best-match correlation of every pair of layers, across depth (a PIL image)."""
        from .heatmap import similarity_figure

        return similarity_figure(self)

    def preview(self):
        return self.heatmap()

    # --- files -----------------------------------------------------------------------------

    def summary(self) -> dict:
        """What ``matches.json`` holds: models, layers with depths and dead units, per pair the
        grid, CKA and mean best-match correlations, per unit its best matches in every layer."""
        return summarize(self)

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``matches.npz`` and ``matches.json`` into ``folder`` (atomically); ``load`` reads them."""
        folder = Path(folder)
        arrays = {"cka": self.cka, "grids": self.grids, "depth_a": self.depth_a, "depth_b": self.depth_b}
        for i, a in enumerate(self.layers_a):
            for j, b in enumerate(self.layers_b):
                arrays[f"corr_{i}_{j}"] = self.correlations[(a, b)].astype(np.float32)
        return [write_npz(folder / ARRAYS, arrays, compressed=True), write_json(folder / SUMMARY, self.summary())]

    @classmethod
    def load(cls, folder: str | Path) -> UnitMatches:
        """A result written by ``save``."""
        folder = Path(folder)
        if not (folder / ARRAYS).exists() or not (folder / SUMMARY).exists():
            raise NeuronscopeError(f"no saved unit matches in '{folder}' (looked for {ARRAYS} and {SUMMARY})")
        meta = json.loads((folder / SUMMARY).read_text())
        if meta.get("format") != FORMAT:
            raise NeuronscopeError(f"'{folder / SUMMARY}' is format {meta.get('format')!r}, not {FORMAT}")
        a, b = meta["model_a"], meta["model_b"]
        with np.load(folder / ARRAYS) as arrays:
            correlations = {(la, lb): arrays[f"corr_{i}_{j}"] for i, la in enumerate(a["layers"])
                            for j, lb in enumerate(b["layers"])}
            return cls(a["name"], b["name"], a["layers"], b["layers"], arrays["depth_a"], arrays["depth_b"],
                       a["channels"], b["channels"], arrays["cka"], arrays["grids"], correlations,
                       {k: list(v) for k, v in a["dead"].items()}, {k: list(v) for k, v in b["dead"].items()},
                       meta["images"], meta.get("source", ""), meta.get("top", 5), meta.get("manifest", {}))

    # --- helpers ---------------------------------------------------------------------------

    def _mean_best(self, reverse: bool) -> np.ndarray:
        out = np.full((len(self.layers_a), len(self.layers_b)), np.nan)
        for i, a in enumerate(self.layers_a):
            for j, b in enumerate(self.layers_b):
                r = self.correlations[(a, b)]
                r = r.T if reverse else r
                live = ~np.isnan(r).all(axis=1)
                if live.any():
                    out[i, j] = float(np.nanmax(r[live], axis=1).mean())
        return out

    @staticmethod
    def _name(layer: str, layers: list[str], model: str) -> str:
        if layer not in layers:
            raise NeuronscopeError(f"layer '{layer}' of {model} was not compared: {did_you_mean(layer, layers)}")
        return layer


def best_matches(r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a correlation matrix (NaN: dead), the ``k`` columns of highest correlation,
    best first: (rows, k) indices (-1 where none) and values (NaN there)."""
    k = min(k, r.shape[1])
    scores = np.where(np.isnan(r), -np.inf, r)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(scores, order, axis=1)
    missing = ~np.isfinite(values)
    return np.where(missing, -1, order), np.where(missing, np.nan, values)
