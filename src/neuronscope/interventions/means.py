"""Mean activations over a source, for mean ablation: one streamed pass, a running sum per layer.

    means = mean_activations(model, "photos", ["blocks.4.2", "blocks.4.2.features"])
    Ablate("blocks.4.2:17", means=means)

The mean is kept per channel and position (C, H, W) at the model's input size: positions near the
border differ from the middle (padding), so a mean-ablated neuron gets what it usually has there.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.resolve import resolve_source
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..manifest import model_fields
from ..models.model import Model
from ..stream import BatchView, PassConfig, Reader, Unsaved, stream


@dataclass(frozen=True)
class ActivationMeans:
    """Per layer, the mean activation map (C, H, W) over ``images`` images of ``source``."""

    maps: dict[str, torch.Tensor]
    images: int
    source: str
    origin: dict = field(default_factory=dict, repr=False)

    def of(self, layer: str) -> torch.Tensor:
        if layer not in self.maps:
            raise NeuronscopeError(f"no mean of layer '{layer}' was taken (means of: {', '.join(self.maps)}); "
                                   "pass it to mean_activations")
        return self.maps[layer]


def mean_activations(model: Model, source: ImageSource | str | None, layers: Sequence[str],
                     config: PassConfig = PassConfig()) -> ActivationMeans:
    """The mean of each of ``layers`` (spatial layers, derived ones included) over ``source``."""
    names = list(dict.fromkeys(model.spatial_layer(layer).name for layer in layers))
    if not names:
        raise NeuronscopeError("mean_activations needs at least one layer")
    images = resolve_source(source)
    sums = _LayerSums(model, tuple(names))
    stream(images, [sums], config, what="mean activations")
    if sums.images == 0:
        raise NeuronscopeError(f"no readable image in {images.name}: no mean to take")
    maps = {layer: torch.from_numpy(total / sums.images).float() for layer, total in sums.totals.items()}
    return ActivationMeans(maps, sums.images, images.name, model_fields(model))


class _LayerSums(Unsaved):
    """An accumulator: the float64 sum of each layer's maps over the images of the pass."""

    def __init__(self, model: Model, layers: tuple[str, ...]) -> None:
        self.reader = Reader.of(model)
        self.name = f"layer sums {self.reader.key} {','.join(layers)}"
        self.reads = {self.reader: layers}
        self.summarizer = _BatchSums(self.reader.key, layers)
        self.totals: dict[str, np.ndarray] = {}
        self.images = 0

    def merge(self, partial: dict[str, np.ndarray], items) -> None:
        for layer, total in partial.items():
            self.totals[layer] = self.totals.get(layer, 0.0) + total
        self.images += len(items)



@dataclass(frozen=True)
class _BatchSums:
    reader: str
    layers: tuple[str, ...]

    def __call__(self, view: BatchView) -> dict[str, np.ndarray]:
        found = view.activations[self.reader]
        return {layer: found[layer].double().sum(0).cpu().numpy() for layer in self.layers}
