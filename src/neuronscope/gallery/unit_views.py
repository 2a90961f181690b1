"""The views of a unit's page, made a chunk of units at a time: diverse feature visualizations
with their activation, dataset examples as crops, and the quality figure."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..capture import capture
from ..data.sources import ImageSource
from ..examples.receptive import effective_extent
from ..examples.topk import Example, LayerExamples, crop_box, example_image
from ..featurevis.render import render_units
from ..featurevis.robustness import TRIALS, crop_robustness
from ..images import save_png
from ..models.model import Model
from ..units import Unit
from .config import GalleryConfig

CROP_SIZE = 96
"""Side of a dataset-example crop on the unit page, in pixels."""
CROP_MASS = 0.8
"""Crops show the effective receptive field: the part carrying this much of the input gradient."""
MIN_CROP = 32
"""Least crop side in input pixels, so that shallow units' crops keep some context."""


def crop_extent(model: Model, layer: str) -> tuple[int, int] | None:
    """(h, w) in input pixels of a layer's dataset-example crops."""
    extent = effective_extent(model, layer, CROP_MASS)
    return None if extent is None else (max(MIN_CROP, extent[0]), max(MIN_CROP, extent[1]))


def render_chunk(model: Model, layer: str, channels: list[int], config: GalleryConfig, folder: Path,
                 examples: LayerExamples, source: ImageSource,
                 extent: tuple[int, int] | None) -> dict[tuple[str, int], dict[str, Any]]:
    """Render consecutive ``channels`` of ``layer`` together and write each unit's files into
    ``folder/<channel>/``. Unit c's sample s uses seed ``render.seed + c * samples + s``; example
    crops are ``extent`` (h, w) around each example's peak (``crop_extent``)."""
    samples = config.samples
    render = replace(config.render, seed=config.render.seed + channels[0] * samples, progress=False)
    result = render_units(model, [Unit(layer, c) for c in channels], render, samples=samples,
                          diversity=config.diversity if samples > 1 else 0.0)
    if result.interrupted:  # nothing of a partial chunk is recorded; the next run renders it again
        raise KeyboardInterrupt
    peaks = _spatial_peaks(model, layer, result.images, channels, samples)
    robustness = crop_robustness(model, result.images, [Unit(layer, c) for c in channels for _ in range(samples)])
    inputs = _Inputs(model, source, examples.input_size)
    records = {}
    for j, c in enumerate(channels):
        unit_folder = folder / str(c)
        pictures = result.images[j * samples : (j + 1) * samples]
        files = [save_png(unit_folder / f"fv_{s}.png", picture).name for s, picture in enumerate(pictures)]
        fv_peak = float(peaks[j].max())
        dataset_max = float(examples.max_value[c])
        records[(layer, c)] = {
            "fv": files,
            "objective": result.values[j * samples : (j + 1) * samples].tolist(),
            "fv_peak": fv_peak,
            "dataset_max": dataset_max,
            "quality": fv_peak / dataset_max if dataset_max > 0 else None,
            "robustness": _mean(robustness[j * samples : (j + 1) * samples]),
            "robustness_views": TRIALS,
            "top": _save_examples(inputs, examples, examples.top(c), "top", unit_folder, extent),
            "bottom": (_save_examples(inputs, examples, examples.bottom(c), "bottom", unit_folder, extent)
                       if examples.bottom_values is not None else []),
            "seeds": [render.seed + j * samples + s for s in range(samples)],
            "warnings": list(dict.fromkeys(n for s in range(j * samples, (j + 1) * samples) for n in result.notes.get(s, []))),
        }
    return records


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _spatial_peaks(model: Model, layer: str, images: torch.Tensor, channels: list[int], samples: int) -> torch.Tensor:
    """(units, samples): each unit's largest activation anywhere on its own visualizations, seen
    without transforms (comparable to the dataset examples' spatial maxima)."""
    with torch.no_grad(), capture(model, [layer]) as cap:
        acts = cap(images.to(model.device, model.dtype))[layer]  # (units * samples, C, H, W)
    index = torch.tensor([c for c in channels for _ in range(samples)], device=acts.device)
    chosen = acts[torch.arange(len(index)), index]  # (units * samples, H, W)
    return chosen.flatten(1).amax(1).view(len(channels), samples).cpu()


class _Inputs:
    """Source items as the model saw them, each loaded and preprocessed once per chunk: the units
    of a chunk share many examples, and a folder's images can be large."""

    def __init__(self, model: Model, source: ImageSource, size: tuple[int, int]) -> None:
        self.model, self.source, self.size = model, source, size
        self._prepared: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._prepared:
            self._prepared[key] = example_image(self.model, self.source, key, self.size)
        return self._prepared[key]


def _save_examples(inputs: _Inputs, layer: LayerExamples, examples: list[Example], kind: str,
                   folder: Path, extent: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Each example's crop as ``<kind>_<rank>.png``, with where it came from."""
    saved = []
    for rank, example in enumerate(examples):
        box = layer.box(example.y, example.x, extent)
        crop = crop_box(inputs[example.key], box, size=CROP_SIZE)
        saved.append({"file": save_png(folder / f"{kind}_{rank}.png", crop).name, "key": example.key,
                      "value": float(example.value), "position": [int(example.y), int(example.x)],
                      "box": list(box)})
    return saved
