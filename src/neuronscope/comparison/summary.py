"""``matches.json``: a `UnitMatches` as plain JSON (no NaN: missing values are null)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .result import UnitMatches

FORMAT = "unit-matches-v1"
"""Version of ``matches.json`` / ``matches.npz``; ``UnitMatches.load`` refuses other versions."""
DIGITS = 5


def summarize(matches: UnitMatches) -> dict:
    """Models (name, layers, depths, channels, dead units), per pair of layers the grid, linear
    CKA and the mean best-match correlation both ways, the CKA matrix, and per unit its best
    matches: ``best_a[layer_a][layer_b]`` = {"channels": [[c, ...] per unit], "correlations": ...}."""
    m = matches
    mean_ab, mean_ba = m.mean_best, m.mean_best_reverse
    pairs = [{"layer_a": a, "layer_b": b, "depth_a": number(m.depth_a[i]), "depth_b": number(m.depth_b[j]),
              "grid": [int(g) for g in m.grids[i, j]], "cka": number(m.cka[i, j]),
              "mean_best_a_to_b": number(mean_ab[i, j]), "mean_best_b_to_a": number(mean_ba[i, j])}
             for i, a in enumerate(m.layers_a) for j, b in enumerate(m.layers_b)]
    return {
        "format": FORMAT,
        "model_a": _model(m.model_a, m.layers_a, m.depth_a, m.channels_a, m.dead_a),
        "model_b": _model(m.model_b, m.layers_b, m.depth_b, m.channels_b, m.dead_b),
        "images": m.images, "source": m.source, "top": m.top,
        "matched_depth": {a: m.matched_layer(a) for a in m.layers_a},
        "cka": nested(m.cka),
        "mean_best_a_to_b": nested(mean_ab),
        "mean_best_b_to_a": nested(mean_ba),
        "pairs": pairs,
        "best_a": {a: {b: _best(*m.best(a, b)) for b in m.layers_b} for a in m.layers_a},
        "best_b": {b: {a: _best(*m.best(a, b, reverse=True)) for a in m.layers_a} for b in m.layers_b},
        "manifest": m.manifest,
    }


def number(value) -> float | None:
    """A float rounded for JSON, None for NaN."""
    value = float(value)
    return None if math.isnan(value) else round(value, DIGITS)


def nested(array: np.ndarray) -> list:
    """An array as nested lists of ``number``s."""
    if array.ndim == 1:
        return [number(v) for v in array]
    return [nested(row) for row in array]


def _model(name: str, layers: list[str], depths: np.ndarray, channels: list[int], dead: dict[str, list[int]]) -> dict:
    return {"name": name, "layers": list(layers), "depths": nested(np.asarray(depths, dtype=float)),
            "channels": [int(c) for c in channels], "dead": {k: [int(c) for c in v] for k, v in dead.items()}}


def _best(index: np.ndarray, values: np.ndarray) -> dict:
    return {"channels": index.astype(int).tolist(), "correlations": nested(values)}
