"""The streaming state of a dataset-examples pass: top-k and bottom-k per channel, merged batch by batch."""
from __future__ import annotations

import numpy as np
import torch

from .results import LayerExamples


class _Running:
    """Streaming top-k and bottom-k of one layer: merge each batch, keep the best k."""

    def __init__(self, channels: int, k: int) -> None:
        self.top_values = torch.full((channels, k), -torch.inf)
        self.top_index = torch.full((channels, k), -1, dtype=torch.long)
        self.top_flat = torch.zeros((channels, k), dtype=torch.long)
        self.bottom_values = torch.full((channels, k), torch.inf)
        self.bottom_index = torch.full((channels, k), -1, dtype=torch.long)
        self.bottom_flat = torch.zeros((channels, k), dtype=torch.long)
        self.minimum = torch.inf
        self.grid = (0, 0)

    def add(self, activations: torch.Tensor, positions: torch.Tensor) -> None:
        flat = activations.detach().float().cpu()
        self.grid = tuple(flat.shape[2:]) if flat.dim() == 4 else (1, 1)
        flat = flat.flatten(2) if flat.dim() == 4 else flat.unsqueeze(-1)
        high, high_at = flat.max(dim=2)
        low, low_at = flat.min(dim=2)
        self.minimum = min(self.minimum, float(low.min()))
        index = positions.expand(flat.shape[1], -1)
        self.top_values, self.top_index, self.top_flat = _merge(
            (self.top_values, high.T), (self.top_index, index), (self.top_flat, high_at.T), descending=True)
        self.bottom_values, self.bottom_index, self.bottom_flat = _merge(
            (self.bottom_values, low.T), (self.bottom_index, index), (self.bottom_flat, low_at.T), descending=False)

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

    def add(self, activations: dict[str, torch.Tensor], batch: list[tuple[int, str]], next_position: int) -> None:
        positions = torch.tensor([p for p, _ in batch], dtype=torch.long)[None]
        for name in self.layers:
            self.running[name].add(activations[name], positions)
        self.keys.update(batch)
        self.next, self.batches, self.images = next_position, self.batches + 1, self.images + len(batch)
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
