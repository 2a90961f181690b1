"""What an accumulator is: which models and layers it reads, how it summarizes a batch where the
model runs, and how it merges the summaries into its running state where the pass is driven."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from ..data.loading import Preparer
from ..errors import NeuronscopeError

if TYPE_CHECKING:
    from ..models.model import Model


@dataclass(frozen=True, eq=False)
class Reader:
    """A model read at one input size. Two readers with the same ``key`` are the same reading:
    the pass runs that model once per batch at that size for all of them."""

    model: Model
    size: tuple[int, int]

    @classmethod
    def of(cls, model: Model, size: tuple[int, int] | None = None) -> Reader:
        """``model`` at ``size`` (default: its input size)."""
        return cls(model, tuple(int(s) for s in (size or model.input_size)))

    @property
    def key(self) -> str:
        return f"{self.model.name}{self.model.variant}@{self.size[0]}x{self.size[1]}"

    @property
    def preparer(self) -> Preparer:
        return Preparer.of(self.model, self.size)


@dataclass
class BatchView:
    """What a summarizer sees of one batch: the readable items' (position, key), and per reader
    key the models, their inputs (B, C, H, W) on the model's device, and the captured activations."""

    items: list[tuple[int, str]]
    models: dict[str, Model]
    inputs: dict[str, torch.Tensor]
    activations: dict[str, dict[str, torch.Tensor]]


Summarizer = Callable[[BatchView], Any]
"""Turns a batch into a small partial result; picklable, since it may run in a Ray worker."""


class Accumulator(Protocol):
    """One consumer of a pass."""

    name: str
    """What it collects, unique within a pass; checkpoints are matched by it."""
    reads: dict[Reader, tuple[str, ...]]
    """The layers it needs of each reader (an empty tuple: only the reader's inputs)."""
    summarizer: Summarizer

    def merge(self, partial: Any, items: list[tuple[int, str]]) -> None:
        """Add one batch's partial result (batches arrive in source order)."""

    def state(self) -> dict[str, np.ndarray]:
        """The running state as arrays, for a checkpoint."""

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from a checkpoint's arrays (``state``'s output)."""


class Unsaved:
    """For an accumulator of one short pass that is never given a checkpoint: ``state`` and
    ``restore`` refuse, saying so."""

    name: str

    def state(self) -> dict[str, np.ndarray]:
        raise NeuronscopeError(f"{self.name}: not checkpointed (a short pass; give it no checkpoint)")

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        raise NeuronscopeError(f"{self.name}: not checkpointed (a short pass; give it no checkpoint)")
