"""The matching accumulator of a pass: every image at each model's own input size and
preprocessing, every map resampled to its pairs' grids, float64 moments merged batch by batch.

    matching = UnitMatching(model_a, model_b, layers_a, layers_b, grids)
    stream(source, [matching, ...])
    matching.moments, matching.cross           # -> correlation, linear_cka
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models.model import Model
from ..stream import BatchView, Reader
from .positions import Grid, resample
from .statistics import Cross, Moments

MomentKey = tuple[int, str, Grid]
"""(side, layer, grid): side 0 for model A, 1 for B (0 for both when one model is on both sides)."""


@dataclass(frozen=True)
class MomentsSummary:
    """The summarizer of ``UnitMatching``: a batch's maps of both models -> each (side, layer,
    grid)'s ``Moments`` and each pair's centred cross-products (float64, on the CPU)."""

    readers: tuple[str, str]
    grids: dict[tuple[str, str], Grid]
    side_b: int

    def __call__(self, view: BatchView) -> tuple[dict[MomentKey, Moments], dict[tuple[str, str], torch.Tensor]]:
        sides = (view.activations[self.readers[0]], view.activations[self.readers[1]])
        device = _statistics_device(view.models[self.readers[0]])
        moments, centred = {}, {}
        for key in _moment_keys(self.grids, self.side_b):
            side, layer, grid = key
            rows = resample(sides[side][layer].float(), grid).to(device)
            moments[key], centred[key] = Moments.of(rows)
        cross = {(a, b): (centred[(0, a, grid)].T @ centred[(self.side_b, b, grid)]).cpu()
                 for (a, b), grid in self.grids.items()}
        return {key: m.to("cpu") for key, m in moments.items()}, cross


class UnitMatching:
    """An accumulator: the running moments of ``layers_a`` of ``model_a`` and ``layers_b`` of
    ``model_b`` over the same images, each pair on its grid (``positions.pair_grids``). The same
    model may be given twice: one forward pass then serves both sides."""

    def __init__(self, model_a: Model, model_b: Model, layers_a: Sequence[str], layers_b: Sequence[str],
                 grids: dict[tuple[str, str], Grid]) -> None:
        same = model_b is model_a
        self.side_b = 0 if same else 1
        self.readers = (Reader.of(model_a), Reader.of(model_b))
        self.reads = ({self.readers[0]: tuple(dict.fromkeys([*layers_a, *layers_b]))} if same else
                      {self.readers[0]: tuple(layers_a), self.readers[1]: tuple(layers_b)})
        self.layers_a, self.layers_b = list(layers_a), list(layers_b)
        self.grids = dict(grids)
        self.name = f"matching {model_a.name} {','.join(layers_a)} / {model_b.name} {','.join(layers_b)}"
        self.summarizer = MomentsSummary((self.readers[0].key, self.readers[1].key), self.grids, self.side_b)
        # with one model on both sides every key has side 0 and model_b is model_a
        self.moments = {(side, layer, grid): Moments((model_a if side == 0 else model_b).layer(layer).channels)
                        for side, layer, grid in _moment_keys(self.grids, self.side_b)}
        self.cross = {(a, b): Cross(self.moments[(0, a, g)], self.moments[(self.side_b, b, g)])
                      for (a, b), g in self.grids.items()}
        self.images = 0

    def merge(self, partial, items: list[tuple[int, str]]) -> None:
        moments, cross = partial
        for (a, b), product in cross.items():  # before the moments: the update reads the old means
            grid = self.grids[(a, b)]
            self.cross[(a, b)].merge(product, moments[(0, a, grid)], moments[(self.side_b, b, grid)])
        for key, part in moments.items():
            self.moments[key].merge(part)
        self.images += len(items)

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"images": np.array(self.images)}
        for i, key in enumerate(self.moments):
            arrays.update({f"m{i}.{name}": value for name, value in self.moments[key].state().items()})
        for i, key in enumerate(self.cross):
            product = self.cross[key].product
            arrays[f"c{i}"] = np.zeros(0) if product is None else product.numpy()
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.images = int(arrays["images"])
        for i, key in enumerate(self.moments):
            prefix = f"m{i}."
            self.moments[key].restore({n[len(prefix):]: v for n, v in arrays.items() if n.startswith(prefix)})
        for i, key in enumerate(self.cross):
            product = np.array(arrays[f"c{i}"])
            self.cross[key].product = torch.from_numpy(product) if product.size else None


def _moment_keys(grids: dict[tuple[str, str], Grid], side_b: int) -> list[MomentKey]:
    keys: dict[MomentKey, None] = {}
    for (a, b), grid in grids.items():
        keys[(0, a, grid)] = None
        keys[(side_b, b, grid)] = None
    return list(keys)


def _statistics_device(model: Model) -> torch.device:
    """Where the float64 sums are made: the model's device, unless it has no float64 (Apple's MPS)."""
    return torch.device("cpu") if model.device.type == "mps" else model.device
