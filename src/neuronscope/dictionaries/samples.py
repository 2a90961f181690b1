"""Activation vectors of one layer at every position (or a seeded subsample) of a source's images:
an accumulator of the one pass, the training data of a dictionary.

    vectors = ActivationVectors(model, "blocks.4.2", positions=None, seed=0)
    stream(source, [vectors, ...])          # shares the pass with other consumers
    found = vectors.finish()                # .vectors (N, C), .keys (one per vector)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NeuronscopeError
from ..models.model import Model
from ..stream import BatchView, Reader


@dataclass
class Vectors:
    """Activation vectors and the image each came from."""

    layer: str
    vectors: torch.Tensor
    """(N, C) float32 on the CPU."""
    keys: np.ndarray
    """(N,) the source key of each vector's image."""
    grid: tuple[int, int]

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def where(self, mask: np.ndarray) -> Vectors:
        """The vectors whose ``mask`` entry is true."""
        return Vectors(self.layer, self.vectors[torch.from_numpy(mask)], self.keys[mask], self.grid)

    def joined(self, other: Vectors) -> Vectors:
        """These vectors, then ``other``'s (of the same layer)."""
        return Vectors(self.layer, torch.cat([self.vectors, other.vectors]), np.concatenate([self.keys, other.keys]), self.grid)


@dataclass(frozen=True)
class VectorSummary:
    """The summarizer of ``ActivationVectors``: a batch -> its vectors at the sampled positions."""

    reader: str
    layer: str
    grid: tuple[int, int]
    positions: int | None
    seed: int

    def __call__(self, view: BatchView) -> torch.Tensor:
        act = view.activations[self.reader][self.layer].detach()
        if self.positions is None:
            return act.flatten(2).transpose(1, 2).reshape(-1, act.shape[1]).float().cpu()
        flat = torch.as_tensor(np.stack([_picks(place, self.grid, self.positions, self.seed)
                                         for place, _ in view.items]), device=act.device)
        item = torch.arange(len(view.items), device=act.device).repeat_interleave(self.positions)
        width = self.grid[1]
        return act[item, :, flat.flatten() // width, flat.flatten() % width].float().cpu()


class ActivationVectors:
    """An accumulator: ``layer``'s activation vectors at every position of each image (``positions``
    None) or at ``positions`` distinct positions drawn from a generator seeded by ``seed`` and the
    image's place in the source (so the sample does not depend on the batch size or the engine)."""

    def __init__(self, model: Model, layer: str, positions: int | None = None, seed: int = 0) -> None:
        info = model.spatial_layer(layer)
        height, width = info.spatial
        if positions is not None and not 1 <= positions <= height * width:
            raise NeuronscopeError(f"positions per image must be 1..{height * width} ({info.name} is "
                                   f"{height}x{width}), or None for all, got {positions}")
        reader = Reader.of(model)
        self.layer, self.grid = info.name, (height, width)
        self.reads = {reader: (info.name,)}
        self.name = f"activation vectors {reader.key} {info.name} positions={positions} seed={seed}"
        self.summarizer = VectorSummary(reader.key, info.name, self.grid, positions, seed)
        self.per_image = positions or height * width
        self.parts: list[torch.Tensor] = []
        self.keys: list[str] = []

    def merge(self, partial: torch.Tensor, items: list[tuple[int, str]]) -> None:
        self.parts.append(partial)
        self.keys += [key for _, key in items]

    def state(self) -> dict[str, np.ndarray]:
        vectors = torch.cat(self.parts) if self.parts else torch.zeros(0)
        return {"vectors": vectors.numpy(), "keys": np.array(self.keys, dtype=str)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.keys = [str(k) for k in arrays["keys"]]
        self.parts = [torch.from_numpy(np.array(arrays["vectors"]))] if self.keys else []

    def finish(self) -> Vectors:
        if not self.parts:
            raise NeuronscopeError(f"no activation vectors of {self.layer} were collected")
        keys = np.repeat(np.array(self.keys, dtype=object), self.per_image)
        return Vectors(self.layer, torch.cat(self.parts), keys, self.grid)


def _picks(place: int, grid: tuple[int, int], count: int, seed: int) -> np.ndarray:
    """``count`` distinct flat positions of the grid for the image at ``place`` of the source."""
    return np.random.default_rng([seed, place]).choice(grid[0] * grid[1], count, replace=False)
