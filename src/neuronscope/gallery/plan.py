"""What a build has to do: which layers, which units, in which chunks."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import NeuronscopeError
from ..models.depth import representative_layers
from ..models.model import Model
from ..names import LOGITS


@dataclass(frozen=True)
class Plan:
    """Layers (shallow to deep) and the channels of each to show."""

    layers: tuple[str, ...]
    channels: dict[str, tuple[int, ...]]

    @property
    def units(self) -> list[tuple[str, int]]:
        return [(layer, c) for layer in self.layers for c in self.channels[layer]]


def make_plan(model: Model, layers: Iterable[str] | None, units: int | None, classes: Iterable[str] = ()) -> Plan:
    """Resolve layer names (did-you-mean errors come from ``Model.layer``) and pick channels;
    ``classes`` (names or indices) become units of the ``logits`` layer, after the others. A
    derived layer of ``model`` whose parent is shown comes right after it, its units in its own
    order (``DerivedLayer.ranked``: a dictionary's most frequent features first)."""
    names = [model.spatial_layer(layer).name for layer in layers] if layers else representative_layers(model)
    names = [n for n in names if n not in model.derived]
    for name, layer in model.derived.items():  # a derived layer (dictionary features) right after its parent
        if layer.parent in names:
            names.insert(names.index(layer.parent) + 1, name)
    names = sorted(dict.fromkeys(names), key=model.depth)  # stable: derived layers stay after their parent
    channels = {}
    for name in names:
        order = model.derived[name].ranked() if name in model.derived else list(range(model.layer(name).channels))
        channels[name] = tuple(order if units is None else order[:units])
    classes = list(classes)
    if classes:
        if model.num_classes is None:
            raise NeuronscopeError(f"{model.name} has no classes to show (its output is not a vector of class scores)")
        channels[LOGITS] = tuple(sorted({model.class_index(c) for c in classes}))
        names.append(LOGITS)
    return Plan(tuple(names), channels)


def spatial(model: Model, layers: Iterable[str]) -> list[str]:
    """The layers with a spatial grid (photo pages, weights and class views work on those)."""
    return [layer for layer in layers if model.layer(layer).spatial is not None]


def network(model: Model, layers: Iterable[str]) -> list[str]:
    """The spatial layers of the network itself, without derived layers (dictionary features):
    expanded weights, mechanics, atlases and photo pages work on those."""
    return [layer for layer in spatial(model, layers) if layer not in model.derived]


def chunks(channels: list[int], size: int) -> list[list[int]]:
    """Pending channels in chunks of at most ``size``, each a run of consecutive channels (so a
    unit's seeds do not depend on which other units were pending). A longer run is cut into
    chunks of nearly equal length (6 units at most 5 a chunk: 3 + 3, not 5 + 1): a small
    chunk wastes the machine, and every new batch shape pays its kernels' set-up once."""
    runs: list[list[int]] = []
    for c in sorted(channels):
        if runs and runs[-1][-1] == c - 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return [piece for run in runs for piece in _even_pieces(run, size)]


def _even_pieces(run: list[int], size: int) -> list[list[int]]:
    count = -(-len(run) // size)
    base, extra = divmod(len(run), count)
    bounds = [0]
    for i in range(count):
        bounds.append(bounds[-1] + base + (i < extra))
    return [run[a:b] for a, b in zip(bounds, bounds[1:])]
