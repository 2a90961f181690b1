"""What the loop's callbacks see, and ready callbacks: a stop criterion and a progress bar.

A callback is called after every step with a `Step`; one returning True stops the loop
(``Optimized.stopped_at``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Step:
    """What a callback sees after each step."""

    step: int
    """0-based index of the step just taken."""
    images: torch.Tensor
    """(N, C, H, W) the optimized images before this step's update (detached)."""
    values: torch.Tensor
    """(N,) each item's objective at this step (on the transformed images)."""


Callback = Callable[[Step], "bool | None"]


class Plateau:
    """A stop criterion: stop once every item's value has gained less than ``tolerance`` (relative)
    over the last ``patience`` steps."""

    def __init__(self, patience: int = 32, tolerance: float = 1e-3) -> None:
        self.patience, self.tolerance = patience, tolerance
        self._values: list[torch.Tensor] = []

    def __call__(self, step: Step) -> bool:
        self._values.append(step.values)
        if len(self._values) <= self.patience:
            return False
        before, now = self._values[-self.patience - 1], self._values[-1]
        gain = (now - before) / before.abs().clamp(min=1e-8)
        return bool((gain < self.tolerance).all())


def advancing(bar) -> Callback:
    """A callback that moves a tqdm-like ``bar`` on by one per step (it never stops the loop)."""

    def advance(step: Step) -> None:
        bar.update(1)

    return advance
