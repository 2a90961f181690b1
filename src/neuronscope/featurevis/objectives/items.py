"""Objectives that relate the items of a batch: diversity between the samples of a unit, and
smooth interpolations between two channels (alignment of neighbouring items)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .activations import channel_values
from .base import Activations, Objective
from .specs import recorded


@recorded
def diversity(layer: str, items: Sequence[int] | None = None) -> Objective:
    """Gram-matrix similarity between batch items (Lucid's sign: a similarity, >= 0 for
    non-negative layers). Use it as ``objective - weight * diversity(layer)``.

    Item b gets ``sum_{b' != b} <G_b, G_b'> / n`` with ``G`` the Frobenius-normalized Gram of its
    (positions x channels) activations, over the ``items`` given (default: the whole batch).
    ``n`` identical images score ``n - 1`` in total.
    """

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        chosen = list(range(act.shape[0])) if items is None else list(items)
        flat = act[chosen].flatten(2)  # (n, C, positions)
        grams = flat @ flat.transpose(1, 2)
        grams = grams.flatten(1)
        grams = grams / (grams.norm(dim=1, keepdim=True) + 1e-10)
        similarity = grams @ grams.T
        per_item = (similarity.sum(1) - similarity.diagonal()) / len(chosen)
        out = torch.zeros(act.shape[0], dtype=act.dtype, device=act.device)
        return out.index_add(0, torch.as_tensor(chosen, device=act.device), per_item)

    return Objective(fn, (layer,), f"diversity {layer}")


@recorded
def alignment(layer: str, decay_ratio: float = 2.0) -> Objective:
    """Already negated: ``-sum_{d=1..4} sum_i mean((a_i - a_{i+d})^2) / r^d`` (smooth interpolations)."""

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        out = torch.zeros(act.shape[0], dtype=act.dtype, device=act.device)
        for d in range(1, 5):
            if d >= act.shape[0]:
                break
            diffs = (act[:-d] - act[d:]).pow(2).flatten(1).mean(1) / decay_ratio**d
            out = out.index_add(0, torch.arange(act.shape[0] - d, device=act.device), -diffs)
        return out

    return Objective(fn, (layer,), f"alignment {layer}")


@recorded
def channel_interpolate(layer_a: str, index_a: int, layer_b: str, index_b: int) -> Objective:
    """Item n of B weighs ``(1 - n/(B-1)) * channel A + n/(B-1) * channel B``."""

    def fn(acts: Activations) -> torch.Tensor:
        a = channel_values(acts[layer_a], index_a, layer_a).flatten(1).mean(1)
        b = channel_values(acts[layer_b], index_b, layer_b).flatten(1).mean(1)
        weights = torch.linspace(0, 1, a.shape[0], device=a.device, dtype=a.dtype)
        return (1 - weights) * a + weights * b

    return Objective(fn, tuple(dict.fromkeys((layer_a, layer_b))), f"interpolate {layer_a}:{index_a} -> {layer_b}:{index_b}")
