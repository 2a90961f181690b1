"""Sanity checks on feature visualizations: did the optimization converge, and does a class
visualization travel the path natural images of its class travel through the network
(Geirhos et al., ICML 2024: visualizations can be made to show anything, so check them)?

    converged(result.history)                          # per image: had its objective stopped rising?
    path_similarity(model, source, {281: images}, layers)  # per class and layer: class vs other images
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..capture import capture
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..stream import BatchView, PassConfig, Reader, Unsaved, stream

PLATEAU_WINDOW = 0.1
"""Convergence compares the mean objective over the last tenth of the steps with the tenth before."""
PLATEAU_RISE = 0.01
"""...and calls an image converged when that rise is below 1 % of the objective's size."""
JUDGED_STEPS = 20
"""Renders of fewer steps are not judged (``converged`` says None for all their images)."""


def converged(history: torch.Tensor | np.ndarray, window: float = PLATEAU_WINDOW,
              rise: float = PLATEAU_RISE) -> list[bool | None]:
    """For a render's (steps, N) objective history: had each image's objective stopped rising when
    the render ended? (The rule of the IMI stimuli, which were optimized until the objective
    plateaued: here, the mean over the last ``window`` of the steps is less than ``rise`` times
    its own size above the mean over the ``window`` before; noise from the random transforms
    averages out over the window.) Fewer than ``JUDGED_STEPS`` steps: not judged, all None."""
    values = np.asarray(history, dtype=np.float64)
    steps = values.shape[0]
    width = max(1, int(round(steps * window)))
    if steps < JUDGED_STEPS or 2 * width > steps:
        return [None] * values.shape[1]
    last = values[-width:].mean(axis=0)
    before = values[-2 * width : -width].mean(axis=0)
    return [bool(g <= rise * max(abs(v), 1e-12)) for g, v in zip(last - before, last)]


@dataclass(frozen=True)
class PathSimilarity:
    """How alike a class visualization's activations are to natural images of its class
    (``to_class``) and to the other images (``to_others``), per layer: cosine of the spatially
    pooled activations with the mean over those images. ``images``: natural images of the class."""

    class_index: int
    class_name: str
    images: int
    to_class: dict[str, float]
    to_others: dict[str, float]

    @property
    def closer_to_class(self) -> dict[str, bool]:
        return {layer: self.to_class[layer] > self.to_others[layer] for layer in self.to_class}


def path_similarity(model: Model, source: ImageSource, visualizations: Mapping[int, torch.Tensor], layers: Sequence[str],
                    config: PassConfig = PassConfig(progress=False)) -> list[PathSimilarity]:
    """For each class (index -> (N, 3, H, W) visualizations in [0, 1]) and each of ``layers``:
    the similarity of the visualizations' activations to those of the source's images that the
    model classifies as the class, and to those of the rest, from one pass over ``source``."""
    layers = [model.layer(name).name for name in layers]
    means = ClassMeans(model, layers)
    stream(source, [means], config, what=f"class means {model.name}")
    found = []
    for index, images in visualizations.items():
        if means.count.get(index, 0) == 0:
            raise NeuronscopeError(f"no image of {source.name} is classified as '{_name(model, index)}': path similarity "
                                   f"compares a visualization with natural images of its class; use a source that has some")
        pooled = _pooled_batch(model, layers, images)
        to_class, to_others = {}, {}
        for layer in layers:
            own = means.sums[layer][index] / means.count[index]
            others_count = means.images - means.count[index]
            others = (means.total[layer] - means.sums[layer][index]) / max(others_count, 1)
            to_class[layer] = _mean_cosine(pooled[layer], own)
            to_others[layer] = _mean_cosine(pooled[layer], others)
        found.append(PathSimilarity(index, _name(model, index), means.count[index], to_class, to_others))
    return found


class ClassMeans(Unsaved):
    """An accumulator: per layer, the sum of spatially pooled activations of all images, and of
    the images of each predicted class."""

    def __init__(self, model: Model, layers: Sequence[str]) -> None:
        self.reader = Reader.of(model)
        self.layers = list(layers)
        self.name = f"class means {self.reader.key} {','.join(self.layers)}"
        self.reads = {self.reader: (*self.layers, LOGITS)}
        self.summarizer = _PooledByClass(self.reader.key, tuple(self.layers))
        self.sums: dict[str, dict[int, np.ndarray]] = {layer: {} for layer in self.layers}
        self.total: dict[str, np.ndarray] = {}
        self.count: dict[int, int] = {}
        self.images = 0

    def merge(self, partial, items) -> None:
        predicted, pooled = partial
        self.images += len(predicted)
        for row, index in enumerate(predicted):
            self.count[index] = self.count.get(index, 0) + 1
            for layer in self.layers:
                value = pooled[layer][row]
                self.sums[layer][index] = self.sums[layer].get(index, 0.0) + value
                self.total[layer] = self.total.get(layer, 0.0) + value



@dataclass(frozen=True)
class _PooledByClass:
    reader: str
    layers: tuple[str, ...]

    def __call__(self, view: BatchView):
        found = view.activations[self.reader]
        predicted = found[LOGITS].argmax(dim=1).tolist()
        return predicted, {layer: _pool(found[layer]).cpu().numpy().astype(np.float64) for layer in self.layers}


def _pooled_batch(model: Model, layers: list[str], images: torch.Tensor) -> dict[str, np.ndarray]:
    with torch.no_grad(), capture(model, layers) as cap:
        found = cap(images.to(model.device, model.dtype))
    return {layer: _pool(found[layer]).cpu().numpy().astype(np.float64) for layer in layers}


def _pool(activation: torch.Tensor) -> torch.Tensor:
    return activation.float().mean(dim=(2, 3)) if activation.dim() == 4 else activation.float().flatten(1)


def _mean_cosine(rows: np.ndarray, target: np.ndarray) -> float:
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return float((rows @ (target / max(np.linalg.norm(target), 1e-12))).mean())


def _name(model: Model, index: int) -> str:
    return model.labels[index] if model.labels else str(index)
