"""The dataset-examples accumulator of a pass: top-k and bottom-k per channel, merged batch by batch.

    examples = TopExamples(model, ["blocks.2.1", "blocks.4.2"], k=9)
    stream(source, [examples, ...])
    examples.finish("blocks.4.2", field)      # a LayerExamples
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models.model import Model
from ..stream import BatchView, Reader
from .results import LayerExamples


@dataclass
class LayerSummary:
    """One batch's top-k and bottom-k of one layer (k or fewer columns): (C, k) spatial maxima
    (minima), the source positions of their images, and the flat grid index where they peak."""

    top_values: torch.Tensor
    top_index: torch.Tensor
    top_flat: torch.Tensor
    bottom_values: torch.Tensor
    bottom_index: torch.Tensor
    bottom_flat: torch.Tensor
    minimum: float
    grid: tuple[int, int]


@dataclass(frozen=True)
class TopKSummary:
    """The summarizer of ``TopExamples``: a batch's activations of some layers of one reader ->
    each layer's ``LayerSummary`` (runs where the model runs)."""

    reader: str
    layers: tuple[str, ...]
    k: int
    weakest: bool = False

    def __call__(self, view: BatchView) -> dict[str, LayerSummary]:
        positions = torch.tensor([p for p, _ in view.items], dtype=torch.long)[None]
        found = view.activations[self.reader]
        return {name: summarize_layer(found[name], positions, self.k, self.weakest) for name in self.layers}


TIE_BREAK = 1e-6
"""With ``weakest``: the size of the deterministic noise added to activations (in float64) so
that equal values (a ReLU's zeros, a ReLU6's sixes) are ranked, and located, at random."""


def summarize_layer(activations: torch.Tensor, positions: torch.Tensor, k: int, weakest: bool = False) -> LayerSummary:
    """A batch's activations of one layer ((B, C, H, W) or (B, C)) reduced to its top-k per channel
    (by spatial maximum) and bottom-k (by spatial minimum; with ``weakest``, the k lowest spatial
    maxima, ties broken by noise that depends only on the item's source position and the grid
    position, so results do not depend on the batching)."""
    flat = activations.detach().float().cpu()
    grid = tuple(flat.shape[2:]) if flat.dim() == 4 else (1, 1)
    flat = flat.flatten(2) if flat.dim() == 4 else flat.unsqueeze(-1)
    if weakest:
        flat = flat.double() + TIE_BREAK * _position_noise(positions[0], flat.shape[1], flat.shape[2])
    high, high_at = flat.max(dim=2)
    low, low_at = (high, high_at) if weakest else flat.min(dim=2)
    index = positions.expand(flat.shape[1], -1)
    top = _best((high.T, index, high_at.T), k, descending=True)
    bottom = _best((low.T, index, low_at.T), k, descending=False)
    return LayerSummary(*top, *bottom, float(low.min()), grid)


def _position_noise(positions: torch.Tensor, channels: int, cells: int) -> torch.Tensor:
    """(B, C, P) values in [0, 1) that depend only on (source position, channel, grid cell)."""
    seed = (positions.double()[:, None, None] * 7919.0 + torch.arange(channels, dtype=torch.float64)[None, :, None] * 104.729
            + torch.arange(cells, dtype=torch.float64)[None, None, :] * 0.6180339887)
    return torch.frac(torch.sin(seed) * 43758.5453).abs()


def _best(columns, k: int, descending: bool):
    """The best k columns of (values, index, flat) by value; ties keep their order (earlier images)."""
    values, index, flat = columns
    order = torch.sort(values, dim=1, descending=descending, stable=True).indices[:, :k]
    return values.gather(1, order), index.gather(1, order), flat.gather(1, order)


_FIELDS = ("top_values", "top_index", "top_flat", "bottom_values", "bottom_index", "bottom_flat")


class _Running:
    """Streaming top-k and bottom-k of one layer: merge each batch's summary, keep the best k."""

    def __init__(self, channels: int, k: int) -> None:
        self.top_values = torch.full((channels, k), -torch.inf)
        self.top_index = torch.full((channels, k), -1, dtype=torch.long)
        self.top_flat = torch.zeros((channels, k), dtype=torch.long)
        self.bottom_values = torch.full((channels, k), torch.inf)
        self.bottom_index = torch.full((channels, k), -1, dtype=torch.long)
        self.bottom_flat = torch.zeros((channels, k), dtype=torch.long)
        self.minimum = torch.inf
        self.grid = (0, 0)

    def merge(self, part: LayerSummary) -> None:
        self.grid = part.grid
        self.minimum = min(self.minimum, part.minimum)
        self.top_values, self.top_index, self.top_flat = _merge(
            (self.top_values, part.top_values), (self.top_index, part.top_index), (self.top_flat, part.top_flat),
            descending=True)
        self.bottom_values, self.bottom_index, self.bottom_flat = _merge(
            (self.bottom_values, part.bottom_values), (self.bottom_index, part.bottom_index),
            (self.bottom_flat, part.bottom_flat), descending=False)

    def referenced(self) -> torch.Tensor:
        return torch.cat([self.top_index.flatten(), self.bottom_index.flatten()])


def _merge(values, index, flat, descending: bool):
    """Concatenate kept and new candidates and keep the best k. The sort is stable and the kept
    ones come first, so exact ties go to the earlier image whatever the batching."""
    k = values[0].shape[1]
    all_values, all_index, all_flat = (torch.cat(pair, dim=1) for pair in (values, index, flat))
    order = torch.sort(all_values, dim=1, descending=descending, stable=True).indices[:, :k]
    return all_values.gather(1, order), all_index.gather(1, order), all_flat.gather(1, order)


class TopExamples:
    """An accumulator: every channel's top-k and bottom-k images of some layers of one model (by
    the channel's spatial maximum and minimum on each image; with ``weakest``, the bottom-k are
    the images with the lowest spatial maximum), and the keys they refer to."""

    def __init__(self, model: Model, layers: Sequence[str], k: int, size: tuple[int, int] | None = None,
                 weakest: bool = False) -> None:
        self.reader = Reader.of(model, size)
        self.layers = list(dict.fromkeys(layers))
        self.k = k
        self.name = f"examples {self.reader.key} k={k}{' weakest' if weakest else ''} {','.join(self.layers)}"
        self.reads = {self.reader: tuple(self.layers)}
        self.summarizer = TopKSummary(self.reader.key, tuple(self.layers), k, weakest)
        self.running = {name: _Running(model.layer(name).channels, k) for name in self.layers}
        self.keys: dict[int, str] = {}
        self.images = 0
        self._capacity = sum(2 * model.layer(name).channels * k for name in self.layers)

    def merge(self, partial: dict[str, LayerSummary], items: list[tuple[int, str]]) -> None:
        """Merge one batch (batches come in source order, so that ties go to earlier images)."""
        for name in self.layers:
            self.running[name].merge(partial[name])
        self.keys.update(items)
        self.images += len(items)
        if len(self.keys) > 2 * self._capacity:
            used = set(torch.cat([r.referenced() for r in self.running.values()]).tolist())
            self.keys = {p: key for p, key in self.keys.items() if p in used}

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"images": np.array(self.images), "positions": np.array(list(self.keys), dtype=np.int64),
                  "keys": np.array(list(self.keys.values()), dtype=str)}
        for i, name in enumerate(self.layers):
            run = self.running[name]
            arrays.update({f"{i}.{field}": getattr(run, field).numpy() for field in _FIELDS})
            arrays[f"{i}.minimum"] = np.array(run.minimum)
            arrays[f"{i}.grid"] = np.array(run.grid)
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.images = int(arrays["images"])
        self.keys = dict(zip(arrays["positions"].tolist(), arrays["keys"].tolist()))
        for i, name in enumerate(self.layers):
            run = self.running[name]
            for field in _FIELDS:
                setattr(run, field, torch.from_numpy(np.array(arrays[f"{i}.{field}"])))
            run.minimum = float(arrays[f"{i}.minimum"])
            run.grid = tuple(int(v) for v in arrays[f"{i}.grid"])

    def finish(self, name: str, field) -> LayerExamples:
        """The examples of layer ``name``; ``field``: its receptive field (``field_geometry``) or None."""
        run = self.running[name]
        n = min(self.images, run.top_values.shape[1])
        top_index, bottom_index = run.top_index[:, :n].contiguous(), run.bottom_index[:, :n].contiguous()
        used = torch.unique(torch.cat([top_index.flatten(), bottom_index.flatten()]))  # sorted
        width = run.grid[1]

        def pos(flat: torch.Tensor) -> np.ndarray:
            return np.stack([(flat // width).numpy(), (flat % width).numpy()], axis=-1).astype(np.int64)

        extent, stride, offset = field if field is not None else (None, None, None)
        return LayerExamples(
            layer=name, channels=run.top_values.shape[0], keys=[self.keys[int(p)] for p in used],
            top_values=run.top_values[:, :n].numpy().astype(np.float32),
            top_index=torch.searchsorted(used, top_index).numpy(), top_pos=pos(run.top_flat[:, :n]),
            bottom_values=run.bottom_values[:, :n].numpy().astype(np.float32),
            bottom_index=torch.searchsorted(used, bottom_index).numpy(), bottom_pos=pos(run.bottom_flat[:, :n]),
            max_value=run.top_values[:, 0].numpy().astype(np.float32), grid=run.grid, input_size=self.reader.size,
            field_size=extent, field_stride=stride, field_offset=offset, images=self.images, min_value=run.minimum,
        )
