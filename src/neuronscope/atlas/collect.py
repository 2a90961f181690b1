"""Samples for an atlas: activation vectors at random interior positions of a source's images,
with each vector's attribution to every class.

    samples = collect(model, bundled_source(), "blocks.4.2", AtlasConfig(positions=8, seed=0))
    samples.activations      # (N, C)
    samples.attributions     # (N, classes): attr_k = h . d logit_k / d h

The attribution of all classes at once is a forward-mode derivative of the logits along "the
activation at that position, zeros elsewhere": one forward pass of the rest of the network per
sample (the P samples of an image run as P copies of it in one batch), not one backward pass per class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..attribution.integrated import logit_derivative_along
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..models.fuse import fast_copy
from ..models.model import Model
from ..stream import BatchView, PassConfig, Reader, Runner, stream
from .config import AtlasConfig

BORDER = 1
"""Positions this close to the layer's edge are never sampled (boundary effects of padding)."""


@dataclass
class Samples:
    """Activation vectors of one layer at dataset positions, and their class attributions."""

    layer: str
    activations: torch.Tensor
    """(N, C) float32 on the CPU."""
    attributions: torch.Tensor | None
    """(N, classes) float32: ``h . d logit_k / d h`` of each sample; None when not collected."""
    keys: list[str]
    """The image of each sample (a source key)."""
    positions: torch.Tensor
    """(N, 2) (row, column) of each sample on the layer's grid."""
    grid: tuple[int, int]
    """The layer's (height, width) at the input size used."""

    def __len__(self) -> int:
        return int(self.activations.shape[0])

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> Samples:
        """The samples at ``index`` (in that order)."""
        chosen = torch.as_tensor(np.asarray(index, dtype=np.int64))
        attributions = None if self.attributions is None else self.attributions[chosen]
        return Samples(self.layer, self.activations[chosen], attributions, [self.keys[int(i)] for i in chosen],
                       self.positions[chosen], self.grid)


def collect(model: Model, source: ImageSource, layer: str, config: AtlasConfig = AtlasConfig(), *,
            fast: bool = True, runner: Runner | None = None) -> Samples:
    """``config.positions`` random interior positions of ``layer`` per image of ``source``
    (distinct, at least ``BORDER`` from every edge, drawn from a generator seeded by
    ``config.seed`` and the image's place in the source, so the samples do not depend on the
    batch size); their activation vectors and, with ``config.attributions``, their attribution to
    every class. ``fast``: the attribution pass runs the model's folded channels-last copy
    (``models.fuse.fast_copy``, as renders do; about 1.8x faster on a CPU; attributions within
    0.2 % of the largest one of the original model's). To collect in a pass shared with other
    consumers, use the ``AtlasSamples`` accumulator."""
    samples = AtlasSamples(model, layer, config, fast=fast)
    stream(source, [samples], PassConfig(batch=config.batch, workers=0, progress=config.progress), runner=runner,
           what=f"atlas samples {samples.layer}")
    return samples.finish()


@dataclass(frozen=True)
class SampleSummary:
    """The summarizer of ``AtlasSamples``: a batch -> the activation vectors at its sampled
    positions, their class attributions (or None), and the positions (runs where the model runs)."""

    reader: str
    layer: str
    grid: tuple[int, int]
    positions: int
    seed: int
    attributions: bool
    fast: bool

    def __call__(self, view: BatchView) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        rows, cols = _positions([p for p, _ in view.items], self.grid, self.positions, self.seed)
        if not self.attributions:  # the pass's own capture has the layer
            act = view.activations[self.reader][self.layer]
            item = torch.arange(len(view.items)).repeat_interleave(self.positions)
            vectors = act[item, :, rows.flatten().to(act.device), cols.flatten().to(act.device)].float().cpu()
            return vectors, None, torch.stack([rows.flatten(), cols.flatten()], 1)
        model = view.models[self.reader]
        runner, memory_format = fast_copy(model, keep=[self.layer]) if self.fast else (model, torch.contiguous_format)
        x = view.inputs[self.reader].contiguous(memory_format=memory_format)
        vectors, attributed = _attributed(runner, self.layer, x, rows, cols)
        return vectors, attributed, torch.stack([rows.flatten(), cols.flatten()], 1)


class AtlasSamples:
    """An accumulator: the samples of ``collect`` (see there), merged in source order."""

    def __init__(self, model: Model, layer: str, config: AtlasConfig = AtlasConfig(), *, fast: bool = True) -> None:
        info = model.spatial_layer(layer)
        if config.attributions and model.num_classes is None:
            raise NeuronscopeError(f"{model.name} has no class output to attribute; use attributions=False")
        height, width = info.spatial
        inner = (height - 2 * BORDER) * (width - 2 * BORDER)
        if config.positions > inner:
            raise NeuronscopeError(f"positions per image must be 1..{inner} (the interior of {info.name}'s "
                                   f"{height}x{width} grid), got {config.positions}")
        self.layer, self.grid, self.attributions = info.name, (height, width), config.attributions
        reader = Reader.of(model)
        self.reads = {reader: () if config.attributions else (info.name,)}
        self.name = (f"atlas samples {reader.key} {info.name} positions={config.positions} seed={config.seed} "
                     f"attributions={config.attributions} fast={fast and config.attributions}")
        self.summarizer = SampleSummary(reader.key, info.name, self.grid, config.positions, config.seed,
                                        config.attributions, fast)
        self.parts: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []
        self.keys: list[str] = []
        self.count = config.positions

    def merge(self, partial, items: list[tuple[int, str]]) -> None:
        self.parts.append(partial)
        self.keys += [key for _, key in items for _ in range(self.count)]

    def state(self) -> dict[str, np.ndarray]:
        if not self.parts:
            return {"keys": np.array([], dtype=str)}
        samples = self.finish()
        arrays = {"activations": samples.activations.numpy(), "positions": samples.positions.numpy(),
                  "keys": np.array(self.keys, dtype=str)}
        if samples.attributions is not None:
            arrays["attributions"] = samples.attributions.numpy()
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.keys = [str(k) for k in arrays["keys"]]
        self.parts = []
        if self.keys:
            attributions = arrays.get("attributions")
            self.parts = [(torch.from_numpy(np.array(arrays["activations"])),
                           None if attributions is None else torch.from_numpy(np.array(attributions)),
                           torch.from_numpy(np.array(arrays["positions"])))]

    def finish(self) -> Samples:
        if not self.parts:
            raise NeuronscopeError(f"no samples of {self.layer} were collected")
        return Samples(self.layer, torch.cat([p[0] for p in self.parts]),
                       torch.cat([p[1] for p in self.parts]) if self.attributions else None, list(self.keys),
                       torch.cat([p[2] for p in self.parts]), self.grid)


def _positions(places: list[int], grid: tuple[int, int], count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, count) rows and columns: distinct interior positions per image, seeded per image."""
    height, width = grid
    inner_w = width - 2 * BORDER
    picks = [np.random.default_rng([seed, place]).choice((height - 2 * BORDER) * inner_w, count, replace=False)
             for place in places]
    flat = torch.as_tensor(np.stack(picks), dtype=torch.long)
    return flat // inner_w + BORDER, flat % inner_w + BORDER


def _attributed(model: Model, layer: str, x: torch.Tensor, rows: torch.Tensor,
                cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Activation vectors (images * P, C) at the positions, and their attributions (images * P, K)."""
    images, count = rows.shape
    item = torch.arange(images).repeat_interleave(count)
    seen: dict[str, torch.Tensor] = {}

    def along_sample(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        act = output.detach()
        seen["vectors"] = act[item, :, rows.flatten(), cols.flatten()]
        tangent = torch.zeros((images * count, *act.shape[1:]), dtype=act.dtype, device=act.device)
        tangent[torch.arange(images * count), :, rows.flatten(), cols.flatten()] = seen["vectors"]
        return act.repeat_interleave(count, 0), tangent

    derivative = logit_derivative_along(model, x, layer, along_sample,
                                        hint="collect with attributions=False (an atlas without class labels)")
    return seen["vectors"].float().cpu(), derivative.float().cpu()
