"""The streaming state of a dataset-examples pass: top-k and bottom-k per channel, merged batch by batch."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

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


@dataclass
class BatchSummary:
    """What one batch contributes to a pass, small whatever the batch size: every layer's
    ``LayerSummary``, the (position, key) of its readable items, the (key, reason) of the
    unreadable ones and the position after its last candidate. Workers send these to the driver."""

    layers: dict[str, LayerSummary]
    items: list[tuple[int, str]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    next: int = 0


def summarize(activations: dict[str, torch.Tensor], items: list[tuple[int, str]], k: int,
              skipped: list[tuple[str, str]] | None = None, next_position: int | None = None) -> BatchSummary:
    """A batch's activations (each (B, C, H, W) or (B, C)) reduced to its top-k per channel."""
    positions = torch.tensor([p for p, _ in items], dtype=torch.long)[None]
    layers = {name: _summarize_layer(value, positions, k) for name, value in activations.items()}
    last = next_position if next_position is not None else items[-1][0] + 1
    return BatchSummary(layers, list(items), list(skipped or []), last)


def _summarize_layer(activations: torch.Tensor, positions: torch.Tensor, k: int) -> LayerSummary:
    flat = activations.detach().float().cpu()
    grid = tuple(flat.shape[2:]) if flat.dim() == 4 else (1, 1)
    flat = flat.flatten(2) if flat.dim() == 4 else flat.unsqueeze(-1)
    high, high_at = flat.max(dim=2)
    low, low_at = flat.min(dim=2)
    index = positions.expand(flat.shape[1], -1)
    top = _best((high.T, index, high_at.T), k, descending=True)
    bottom = _best((low.T, index, low_at.T), k, descending=False)
    return LayerSummary(*top, *bottom, float(low.min()), grid)


def _best(columns, k: int, descending: bool):
    """The best k columns of (values, index, flat) by value; ties keep their order (earlier images)."""
    values, index, flat = columns
    order = torch.sort(values, dim=1, descending=descending, stable=True).indices[:, :k]
    return values.gather(1, order), index.gather(1, order), flat.gather(1, order)


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


class _PassState:
    """Everything an interrupted pass needs to go on: per-layer running results, the next source
    position, and the keys of the items the results refer to."""

    def __init__(self, layers: list[str], channels: list[int], k: int) -> None:
        self.layers = layers
        self.running = {name: _Running(c, k) for name, c in zip(layers, channels)}
        self.next = 0
        self.batches = 0
        self.images = 0
        self.keys: dict[int, str] = {}
        self.skipped: list[tuple[str, str]] = []
        self._capacity = sum(2 * c * k for c in channels)

    def add(self, part: BatchSummary) -> None:
        """Merge one batch (batches must come in source order, so that ties go to earlier images)."""
        if part.items:
            for name in self.layers:
                self.running[name].merge(part.layers[name])
            self.keys.update(part.items)
            self.batches, self.images = self.batches + 1, self.images + len(part.items)
        self.skipped.extend(part.skipped)
        self.next = part.next
        if len(self.keys) > 2 * self._capacity:
            self._forget_unreferenced()

    def _forget_unreferenced(self) -> None:
        used = set(torch.cat([r.referenced() for r in self.running.values()]).tolist())
        self.keys = {p: key for p, key in self.keys.items() if p in used}

    def finish(self, name: str, input_size: tuple[int, int], field) -> LayerExamples:
        run = self.running[name]
        n = min(self.images, run.top_values.shape[1])
        top_index, bottom_index = run.top_index[:, :n], run.bottom_index[:, :n]
        top_index, bottom_index = top_index.contiguous(), bottom_index.contiguous()
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
            max_value=run.top_values[:, 0].numpy().astype(np.float32), grid=run.grid, input_size=input_size,
            field_size=extent, field_stride=stride, field_offset=offset, images=self.images, min_value=run.minimum,
        )
