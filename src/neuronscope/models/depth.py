"""Layers by relative depth: the representative layers of a model, and the layer of another
model (or of a list) nearest a given depth, for comparisons across models.

Relative depth is a layer's position in run order among all of a model's capturable layers,
from 0 (first) to 1 (the output), as ``Model.depth`` gives it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ..errors import NeuronscopeError

if TYPE_CHECKING:
    from .model import Model

DEFAULT_LAYER_COUNT = 6
"""Layers ``representative_layers`` picks by default (a gallery's and a comparison's default)."""


def representative_layers(model: Model, n: int = DEFAULT_LAYER_COUNT) -> list[str]:
    """The last layer of each of the ``n`` deepest stages, shallow to deep.

    Only layers with a grid of more than one position count. A stage is the parent module of a
    curated spatial layer (``blocks.4`` for ``blocks.4.2``); a model whose curated layers have no
    common parents gets ``n`` evenly spaced curated layers.
    """
    spatial = [info.name for info in model.layers
               if info.spatial and info.spatial[0] * info.spatial[1] > 1 and info.name not in model.derived]
    if not spatial:
        raise NeuronscopeError(f"{model.name} has no curated layer with spatial extent to show")
    stages: dict[str, str] = {}
    for name in spatial:
        parent = name.rpartition(".")[0]
        if parent:
            stages[parent] = name  # later layers of a stage replace earlier ones
    ends = sorted(stages.values(), key=model.depth)
    if len(ends) >= 2:
        return ends[-n:]
    step = max(1, len(spatial) / n)
    return [spatial[min(len(spatial) - 1, round((i + 1) * step) - 1)] for i in range(min(n, len(spatial)))]


def nearest_depth(depths: Mapping[str, float], depth: float) -> str:
    """The name in ``depths`` (name -> relative depth) whose depth is nearest ``depth`` (the
    first of them on a tie)."""
    if not depths:
        raise NeuronscopeError("no layers to choose from")
    return min(depths, key=lambda name: abs(depths[name] - depth))


def matched_layers(reference: Model, layers: Iterable[str], other: Model,
                   candidates: Iterable[str] | None = None) -> list[str]:
    """For each of ``layers`` of ``reference``, the layer of ``other`` at the nearest relative
    depth among ``candidates`` (default: ``other``'s curated layers with a spatial grid)."""
    names = list(candidates) if candidates is not None else [info.name for info in other.layers if info.spatial]
    depths = {name: other.depth(name) for name in names}
    return [nearest_depth(depths, reference.depth(layer)) for layer in layers]
