"""Objectives along a direction in a layer's activation space: ``<a, v> * max(0.1, cos(a, v))^p``
averaged over positions, or at one position; ``dot_cosine`` is the one cosine-weighted dot
product that caricatures use too."""
from __future__ import annotations

import torch

from ...errors import NeuronscopeError
from .activations import grid_position, item_suffix
from .base import Activations, Objective, per_item
from .specs import recorded

COSINE_FLOOR = 0.1
EPS = 1e-4


@recorded
def direction(layer: str, vector: torch.Tensor, cosine_power: float = 0.0, batch: int | None = None) -> Objective:
    """Mean over positions of ``<a_p, v> * max(0.1, cos(a_p, v))^p``; ``v`` is not normalized.

    With p = 0 it is the plain dot product (``direction(L, e_c)`` equals ``channel(L, c)``).
    The cosine floor keeps the optimizer from maximizing the opposite direction.
    """
    v = torch.as_tensor(vector, dtype=torch.float32).flatten()

    def fn(acts: Activations) -> torch.Tensor:
        vectors = _position_vectors(acts[layer], v, layer)
        return _dot_cos(vectors, v.to(vectors), cosine_power).mean(1)

    return Objective(per_item(fn, batch), (layer,), f"direction {layer} (p={cosine_power}){item_suffix(batch)}")


@recorded
def direction_neuron(layer: str, vector: torch.Tensor, x: int | None = None, y: int | None = None,
                     cosine_power: float = 0.0, batch: int | None = None) -> Objective:
    """``direction`` at one position (default: the centre)."""
    v = torch.as_tensor(vector, dtype=torch.float32).flatten()

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        if act.dim() != 4:
            raise NeuronscopeError(f"layer '{layer}' has no spatial positions; use direction()")
        col, row = grid_position(act.shape[2:], x, y, layer, "position")
        vectors = _position_vectors(act[:, :, row : row + 1, col : col + 1], v, layer)
        return _dot_cos(vectors, v.to(vectors), cosine_power)[:, 0]

    return Objective(per_item(fn, batch), (layer,), f"direction-neuron {layer} (p={cosine_power}){item_suffix(batch)}")


def _position_vectors(act: torch.Tensor, v: torch.Tensor, layer: str) -> torch.Tensor:
    """(B, C[, H, W]) -> (B, positions, C), checking the vector length."""
    if act.shape[1] != v.numel():
        raise NeuronscopeError(f"direction has {v.numel()} entries but layer '{layer}' has {act.shape[1]} channels")
    return act.flatten(2).transpose(1, 2) if act.dim() > 2 else act.unsqueeze(1)


def _dot_cos(vectors: torch.Tensor, v: torch.Tensor, power: float) -> torch.Tensor:
    return dot_cosine(vectors @ v, vectors.norm(dim=-1), v.norm(), power)


def dot_cosine(dot: torch.Tensor, norm_a: torch.Tensor, norm_b: torch.Tensor, power: float) -> torch.Tensor:
    """``dot * max(0.1, cos)^p`` with ``cos = dot / ((eps + |a|)(eps + |b|))``: the one cosine-weighted
    dot product of directions, direction neurons and caricatures."""
    if power == 0:
        return dot
    cos = dot / ((EPS + norm_a) * (EPS + norm_b))
    return dot * cos.clamp(min=COSINE_FLOOR) ** power
