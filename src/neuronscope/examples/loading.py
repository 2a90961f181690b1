"""Decoding a source into model inputs, batch by batch, in worker processes when that pays.

The examples pass reads ``Batch`` es from ``batches``: positions and keys of the readable items,
their inputs stacked, and the items that could not be read. With ``workers > 0`` a
``torch.utils.data.DataLoader`` decodes and resizes in that many processes while the model runs;
the order of items, and so every result, is the same as with ``workers = 0``.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..models import preprocess
from ..models.model import Model

WORKER_THREADS = 1
"""Torch threads per decoding worker: the model's forward pass keeps the rest of the machine."""


@dataclass(frozen=True)
class Preparer:
    """A model's preprocessing without the model (picklable, for worker processes): centre crop,
    resize to ``size``, channels matched, float32 on the CPU — the same as ``Model.prepare``."""

    size: tuple[int, int]
    crop_fraction: float
    channels: int

    @classmethod
    def of(cls, model: Model, size: tuple[int, int]) -> Preparer:
        return cls(size, model.crop_fraction, model.input_channels)

    def __call__(self, image) -> torch.Tensor:
        x = preprocess.match_channels(preprocess.to_tensor(image), self.channels)
        return preprocess.center_crop_resize(x, self.size, self.crop_fraction)[0]


@dataclass
class Batch:
    """Consecutive candidates of a source: the readable ones' (position, key) and inputs
    (N, C, H, W), or None when none was readable; ``skipped`` (key, reason) for the others;
    ``next`` is the position after the batch's last candidate."""

    items: list[tuple[int, str]]
    inputs: torch.Tensor | None
    skipped: list[tuple[str, str]]
    next: int


def default_workers(source: ImageSource, batch: int) -> int:
    """Worker processes for a pass over ``source``: none for a few batches (starting workers
    costs more than it saves), else up to 4, leaving one core for the model."""
    if len(source) <= 4 * batch:
        return 0
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def batches(source: ImageSource, prepare: Callable, start: int, batch: int, workers: int,
            collate: Callable[[list], Any] | None = None) -> Iterator:
    """The source from candidate position ``start`` on, ``batch`` candidates at a time, each
    batch of ``Decoded`` entries made into one by ``collate`` (default: a ``Batch``)."""
    collate = collate or collate_batch
    decoded = Decoded(source, prepare, start)
    if workers <= 0:
        for first in range(0, len(decoded), batch):
            yield collate([decoded[i] for i in range(first, min(first + batch, len(decoded)))])
        return
    loader = DataLoader(decoded, batch_size=batch, shuffle=False, num_workers=workers, collate_fn=collate,
                        worker_init_fn=_quiet_worker, persistent_workers=False, prefetch_factor=4)
    yield from loader


class Decoded(Dataset):
    """Candidates of a source from ``start`` on, each as (position, key, input or None, reason)."""

    def __init__(self, source: ImageSource, prepare: Preparer, start: int = 0) -> None:
        self.source, self.prepare, self.start = source, prepare, start
        self.keys = list(source.keys())

    def __len__(self) -> int:
        return max(0, len(self.keys) - self.start)

    def __getitem__(self, index: int) -> tuple[int, str, torch.Tensor | None, str | None]:
        position = self.start + index
        key = self.keys[position]
        try:
            return position, key, self.prepare(self.source.load(key)), None
        except NeuronscopeError as error:
            return position, key, None, str(error)


def collate_batch(entries: list[tuple[int, str, torch.Tensor | None, str | None]]) -> Batch:
    readable = [(p, k, x) for p, k, x, _ in entries if x is not None]
    skipped = [(k, reason) for _, k, x, reason in entries if x is None]
    inputs = torch.stack([x for _, _, x in readable]) if readable else None
    return Batch([(p, k) for p, k, _ in readable], inputs, skipped, entries[-1][0] + 1)


def _quiet_worker(_: int) -> None:
    torch.set_num_threads(WORKER_THREADS)
