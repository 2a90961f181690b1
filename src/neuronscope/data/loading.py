"""Decoding a source into model inputs, batch by batch, in worker processes when that pays.

Each item is decoded once and prepared by every ``Preparer`` asked for (one per input size and
preprocessing: two models of different input sizes read the same decoded image). ``batches``
gives ``Batch`` es: positions and keys of the readable items, their inputs stacked per preparer,
and the items that could not be read. With ``workers > 0`` a ``torch.utils.data.DataLoader``
decodes and resizes in that many processes while the model runs; the order of items, and so
every result, is the same as with ``workers = 0``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import NeuronscopeError
from . import preprocess
from .sources import ImageSource

if TYPE_CHECKING:
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
    def of(cls, model: Model, size: tuple[int, int] | None = None) -> Preparer:
        """``model``'s preprocessing at ``size`` (default: its input size)."""
        return cls(tuple(size or model.input_size), model.crop_fraction, model.input_channels)

    def __call__(self, image) -> torch.Tensor:
        x = preprocess.match_channels(preprocess.to_tensor(image), self.channels)
        return preprocess.center_crop_resize(x, self.size, self.crop_fraction)[0]


@dataclass
class Batch:
    """Consecutive candidates of a source: the readable ones' (position, key); their inputs, one
    (N, C, H, W) tensor per preparer (in the order the preparers were given; empty when none was
    readable); ``skipped`` (key, reason) for the others; ``next`` the position after the batch's
    last candidate."""

    items: list[tuple[int, str]]
    inputs: list[torch.Tensor]
    skipped: list[tuple[str, str]]
    next: int


def default_workers(source: ImageSource, batch: int) -> int:
    """Worker processes for a pass over ``source``: none for a few batches (starting workers
    costs more than it saves), else up to 4, leaving one core for the model."""
    if len(source) <= 4 * batch:
        return 0
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def batches(source: ImageSource, preparers: Sequence[Preparer], start: int = 0, batch: int = 16,
            workers: int = 0) -> Iterator[Batch]:
    """The source from candidate position ``start`` on, ``batch`` candidates at a time, each item
    decoded once and prepared by every one of ``preparers``."""
    decoded = Decoded(source, preparers, start)
    if workers <= 0:
        for first in range(0, len(decoded), batch):
            yield collate_batch([decoded[i] for i in range(first, min(first + batch, len(decoded)))])
        return
    loader = DataLoader(decoded, batch_size=batch, shuffle=False, num_workers=workers, collate_fn=collate_batch,
                        worker_init_fn=_quiet_worker, persistent_workers=False, prefetch_factor=4)
    yield from loader


Entry = tuple[int, str, "tuple[torch.Tensor, ...] | None", "str | None"]
"""A decoded candidate: (position, key, one input per preparer or None, why it is unreadable or None)."""


class Decoded(Dataset):
    """Candidates of a source from ``start`` on, each as an ``Entry``."""

    def __init__(self, source: ImageSource, preparers: Sequence[Preparer], start: int = 0) -> None:
        if not preparers:
            raise NeuronscopeError("decoding a source needs at least one preparer")
        self.source, self.preparers, self.start = source, tuple(preparers), start
        self.keys = list(source.keys())

    def __len__(self) -> int:
        return max(0, len(self.keys) - self.start)

    def __getitem__(self, index: int) -> Entry:
        position = self.start + index
        key = self.keys[position]
        try:
            image = self.source.load(key)
            return position, key, tuple(prepare(image) for prepare in self.preparers), None
        except NeuronscopeError as error:
            return position, key, None, str(error)


def collate_batch(entries: list[Entry]) -> Batch:
    readable = [(p, k, x) for p, k, x, _ in entries if x is not None]
    skipped = [(k, reason) for _, k, x, reason in entries if x is None]
    count = len(readable[0][2]) if readable else 0
    inputs = [torch.stack([x[i] for _, _, x in readable]) for i in range(count)]
    return Batch([(p, k) for p, k, _ in readable], inputs, skipped, entries[-1][0] + 1)


def _quiet_worker(_: int) -> None:
    torch.set_num_threads(WORKER_THREADS)
