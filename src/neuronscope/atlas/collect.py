"""Samples for an atlas: activation vectors at random interior positions of a source's images,
with each vector's attribution to every class.

    samples = collect(model, "blocks.4.2", bundled_source(), positions=8, seed=0)
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
from tqdm.auto import tqdm

from ..attribution.integrated import logit_derivative_along
from ..capture import capture
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples.loading import Preparer, batches
from ..models.fuse import fast_copy
from ..models.model import Model

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


def collect(model: Model, layer: str, source: ImageSource, *, positions: int = 8, seed: int = 0,
            attributions: bool = True, batch: int = 16, fast: bool = True, progress: bool = True) -> Samples:
    """``positions`` random interior positions of ``layer`` per image of ``source`` (distinct,
    at least ``BORDER`` from every edge, drawn from a generator seeded by ``seed`` and the image's
    place in the source, so the samples do not depend on ``batch``); their activation vectors and,
    with ``attributions``, their attribution to every class. ``fast``: run the model's folded
    channels-last copy (``models.fuse.fast_copy``, as renders do; about 1.8x faster on a CPU;
    attributions within 0.2 % of the largest one of the original model's)."""
    info = model.spatial_layer(layer)
    if attributions and model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output to attribute; use attributions=False")
    height, width = info.spatial
    inner = (height - 2 * BORDER) * (width - 2 * BORDER)
    if positions < 1 or positions > inner:
        raise NeuronscopeError(f"positions per image must be 1..{inner} (the interior of {info.name}'s "
                               f"{height}x{width} grid), got {positions}")
    prepare = Preparer.of(model, model.input_size)
    runner, memory_format = fast_copy(model, keep=[info.name]) if fast else (model, torch.contiguous_format)
    acts, attrs, keys, where = [], [], [], []
    bar = tqdm(total=len(source), desc=f"atlas samples {info.name}", unit="image", disable=not progress, leave=False)
    try:
        for part in batches(source, prepare, 0, batch, 0):
            bar.update(len(part.items) + len(part.skipped))
            if part.inputs is None:
                continue
            rows, cols = _positions([p for p, _ in part.items], (height, width), positions, seed)
            x = part.inputs.to(model.device, model.dtype).contiguous(memory_format=memory_format)
            vectors, attributed = _sample(runner, info.name, x, rows, cols, attributions)
            acts.append(vectors)
            attrs.append(attributed)
            keys += [k for _, k in part.items for _ in range(positions)]
            where.append(torch.stack([rows.flatten(), cols.flatten()], 1))
    finally:
        bar.close()
    if not acts:
        raise NeuronscopeError(f"no readable images in {source.name}")
    return Samples(info.name, torch.cat(acts), torch.cat(attrs) if attributions else None, keys, torch.cat(where),
                   (height, width))


def _positions(places: list[int], grid: tuple[int, int], count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, count) rows and columns: distinct interior positions per image, seeded per image."""
    height, width = grid
    inner_w = width - 2 * BORDER
    picks = [np.random.default_rng([seed, place]).choice((height - 2 * BORDER) * inner_w, count, replace=False)
             for place in places]
    flat = torch.as_tensor(np.stack(picks), dtype=torch.long)
    return flat // inner_w + BORDER, flat % inner_w + BORDER


def _sample(model: Model, layer: str, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
            attributions: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Activation vectors (images * P, C) at the positions, and their attributions (images * P, K)."""
    images, count = rows.shape
    item = torch.arange(images).repeat_interleave(count)
    if not attributions:
        with torch.no_grad(), capture(model, [layer]) as cap:
            act = cap(x)[layer]
        return act[item, :, rows.flatten(), cols.flatten()].float().cpu(), None
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
