"""Atlas icons: one feature visualization per cell, all cells in batches on the one loop.

Icon i maximizes ``direction_neuron(layer, v_i, cosine_power=n, batch=i)`` at the layer's centre
position (dot x cos^n), each batch item with its own objective and seed; with ``attempts`` > 1
each cell is rendered that many times (other seeds) and the attempt with the highest final
objective is kept, as Lucid's atlas renderer does.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..capture import capture
from ..featurevis import objectives as obj
from ..featurevis.batching import batch_size
from ..featurevis.loop import progress_bar
from ..featurevis.render import RenderConfig, render
from ..featurevis.transforms import TransformConfig
from ..models.model import Model
from ..units import Unit

ATLAS_TRANSFORMS = TransformConfig(
    pad=16, jitter=32, scales=tuple(0.998**n for n in range(20, 40)),
    angles=tuple(float(a) for a in [*range(-20, 20), *range(-10, 10), *range(-5, 5)]) + (0.0,) * 5,
    jitter_after=2, fill=0.5)
"""Lucid's activation-atlas recipe as one warp: pad 16 (grey), its five jitters (4, 4, 8, 8, 8)
as one crop of up to 32, zooms 0.998^20..0.998^39, rotations from the multiset
range(-20, 20) + range(-10, 10) + range(-5, 5) + five 0s (small angles likelier), jitter 2."""


def render_icons(model: Model, layer: str, vectors: torch.Tensor, config: RenderConfig, *, cosine_power: float,
                 attempts: int = 1, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Icons (cells, 3, S, S) for direction ``vectors`` (cells, C) at ``layer``'s centre, their
    final objective values (cells,), and the seed of each kept icon. Cell i, attempt a uses seed
    ``config.seed + a * cells + i``; a batch holds as many cells as ``render_units`` would put
    in one (the memory budget, at most ``max_batch``)."""
    cells = len(vectors)
    config = replace(config, progress=False)
    chunk = batch_size(model, [Unit(layer, 0)], config.for_view(model, False), 1)
    best_images, best_values, best_seeds = None, torch.full((cells,), -float("inf")), [0] * cells
    bar = progress_bar(config.steps * attempts * -(-cells // chunk), f"atlas icons {layer}", progress)
    step = [lambda _: bar.update(1) and None]
    try:
        for attempt in range(attempts):
            for first in range(0, cells, chunk):
                ids = list(range(first, min(first + chunk, cells)))
                objective = sum(obj.direction_neuron(layer, vectors[i], cosine_power=cosine_power, batch=b)
                                for b, i in enumerate(ids))
                seeds = [config.seed + attempt * cells + i for i in ids]
                result = render(model, objective, config, seeds=seeds, labels=[f"cell {i}" for i in ids],
                                callbacks=step)
                if best_images is None:
                    best_images = torch.zeros((cells, *result.images.shape[1:]))
                for b, i in enumerate(ids):
                    if float(result.values[b]) > float(best_values[i]):
                        best_values[i], best_seeds[i] = result.values[b], seeds[b]
                        best_images[i] = result.images[b]
    finally:
        bar.close()
    return best_images, best_values, best_seeds


def centre_activations(model: Model, layer: str, images: torch.Tensor) -> torch.Tensor:
    """(N, C) the activation vector at ``layer``'s centre position on each image as it is."""
    with torch.no_grad(), capture(model, [layer]) as cap:
        act = cap(images.to(model.device, model.dtype))[layer]
    height, width = act.shape[-2:]
    return act[:, :, height // 2, width // 2].float().cpu()


def icon_config(steps: int, size: int, seed: int, progress: bool) -> RenderConfig:
    """The render settings of atlas icons: Lucid's Adam 0.05 on a decorrelated Fourier image,
    the atlas transforms, the redirected ReLU at the start."""
    return replace(RenderConfig(), steps=steps, size=size, seed=seed, transforms=ATLAS_TRANSFORMS, progress=progress)
