"""Random directions of a layer as a derived layer (``blocks.4.2.random``): the baseline that
neurons and dictionary features are scored against.

The directions are the rows of a seeded random rotation of the layer's channel space (as many
as channels, orthonormal), so a direction's value at a position is the projection of the
activation vector there onto it, and writing a changed value back (an intervention) is exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..manifest import stable_hash
from ..models.derived import derived_name
from ..models.model import Model

SUFFIX = "random"


@dataclass(frozen=True, eq=False)
class RandomDirections:
    """A derived layer (``models.derived.DerivedLayer``) of ``channels`` orthonormal random directions."""

    parent: str
    channels: int
    seed: int = 0
    suffix: str = SUFFIX
    kind: str = "random directions"
    objective_scale: float = 1.0
    file: str | None = None
    rotation: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        q, r = torch.linalg.qr(torch.randn(self.channels, self.channels, generator=generator, dtype=torch.float64))
        rotation = q * torch.sign(torch.diagonal(r))[None]  # a uniformly random rotation
        object.__setattr__(self, "rotation", rotation.T.float().contiguous())  # rows are the directions

    @property
    def name(self) -> str:
        return derived_name(self.parent, self.suffix)

    @property
    def fingerprint(self) -> str:
        return stable_hash(["random directions", self.parent, self.channels, self.seed])

    @property
    def recipe(self) -> dict:
        """What a manifest records to make the layer again (no file needed)."""
        return {"random_directions_seed": self.seed}

    def ranked(self) -> list[int]:
        return list(range(self.channels))

    def read(self, parent: torch.Tensor) -> torch.Tensor:
        return torch.einsum("fc,bchw->bfhw", self.rotation.to(parent), parent)

    def write(self, parent: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        return parent + torch.einsum("fc,bfhw->bchw", self.rotation.to(parent), after - before)


def with_random_directions(model: Model, layer: str, seed: int = 0) -> Model:
    """``model`` with ``layer``'s random directions as the derived layer ``<layer>.random``
    (as many as the layer has channels; ``seed`` picks the rotation)."""
    info = model.layer(layer)
    return model.with_layers(RandomDirections(info.name, info.channels, seed))
