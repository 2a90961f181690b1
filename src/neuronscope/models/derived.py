"""Derived layers: units that are not a module's output but a function of one (dictionary features).

A derived layer ``parent.name`` reads its values from the parent layer's output, (B, C, H, W) ->
(B, F, H, W), inside the same capture, so every technique that takes a layer (render, examples,
matching, attribution, the gallery) takes it too. Replacing a derived layer's values in a capture
(an intervention) writes the change back into the parent's output: ``write(parent, before, after)``.
"""
from __future__ import annotations

from typing import Protocol

import torch

SEPARATOR = "."
"""Between the parent layer and the derived layer's own name: ``blocks.4.2.features`` (as hook
points are named after their module in TransformerLens and SAELens); a derived layer never takes
the name of a module of the network."""


class DerivedLayer(Protocol):
    """What a model needs to know of a derived layer."""

    parent: str
    """The layer whose output it reads."""
    name: str
    """Its full address, ``parent.suffix``."""
    channels: int
    kind: str
    fingerprint: str
    """What identifies it (a dictionary's fingerprint): passes and caches never mix two."""
    objective_scale: float
    """What renders multiply its units' objectives by, so that a diversity weight tuned on the
    network's channels weighs them alike (values of about the size of the parent's channels)."""
    file: str | None
    """The file it was loaded from or saved to (manifests record it, so a replay can load it)."""

    def ranked(self) -> list[int]:
        """Its units in the order a gallery shows them first (a dictionary: the most frequent features)."""

    def read(self, parent: torch.Tensor) -> torch.Tensor:
        """The derived values (B, F, H, W) of the parent's output (B, C, H, W); differentiable."""

    def write(self, parent: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """The parent's output changed so that it carries ``after`` in place of ``before``."""


def derived_name(parent: str, suffix: str) -> str:
    return f"{parent}{SEPARATOR}{suffix}"
