"""The views of a unit's page, made a chunk of units at a time: diverse feature visualizations
with their activation, dataset examples as crops, and the quality figure."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
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


@dataclass
class RenderedChunk:
    """A chunk's pictures and measurements, before anything is written: what a worker sends back.

    ``images`` (units * samples, 3, H, W) on the CPU, unit-major; ``values`` the objective per
    image; ``peaks`` (units, samples) the spatial peak of each unit on its own images;
    ``robustness`` per image; ``notes`` the render warnings by image index; ``seed`` the first
    image's seed (image i uses ``seed + i``)."""

    layer: str
    channels: list[int]
    images: torch.Tensor
    values: list[float]
    peaks: torch.Tensor
    robustness: list[float]
    notes: dict[int, list[str]]
    seed: int


def render_pictures(model: Model, layer: str, channels: list[int], config: GalleryConfig) -> RenderedChunk:
    """Render consecutive ``channels`` of ``layer`` together and measure them; writes nothing.
    Unit c's sample s uses seed ``render.seed + c * samples + s``, whoever renders it."""
    samples = config.samples
    render = replace(config.render, seed=config.render.seed + channels[0] * samples, progress=False)
    units = [Unit(layer, c) for c in channels]
    result = render_units(model, units, render, samples=samples, diversity=config.diversity if samples > 1 else 0.0)
    if result.interrupted:  # nothing of a partial chunk is recorded; the next run renders it again
        raise KeyboardInterrupt
    peaks = _spatial_peaks(model, layer, result.images, channels, samples)
    robustness = crop_robustness(model, result.images, [Unit(layer, c) for c in channels for _ in range(samples)])
    return RenderedChunk(layer, list(channels), result.images.detach().cpu(), result.values.tolist(), peaks,
                         list(robustness), dict(result.notes), render.seed)


def write_chunk(model: Model, chunk: RenderedChunk, config: GalleryConfig, folder: Path, examples: LayerExamples,
                source: ImageSource, extent: tuple[int, int] | None) -> dict[tuple[str, int], dict[str, Any]]:
    """Write each unit's files of a rendered chunk into ``folder/<channel>/`` and return their
    manifest records; example crops are ``extent`` (h, w) around each example's peak (``crop_extent``)."""
    samples, layer = config.samples, chunk.layer
    inputs = _Inputs(model, source, examples.input_size)
    records = {}
    for j, c in enumerate(chunk.channels):
        unit_folder = folder / str(c)
        pictures = chunk.images[j * samples : (j + 1) * samples]
        files = [save_png(unit_folder / f"fv_{s}.png", picture).name for s, picture in enumerate(pictures)]
        fv_peak = float(chunk.peaks[j].max())
        dataset_max = float(examples.max_value[c])
        top = _save_examples(inputs, examples, examples.top(c), "top", unit_folder, extent)
        records[(layer, c)] = {
            "fv": files,
            "objective": chunk.values[j * samples : (j + 1) * samples],
            "fv_peak": fv_peak,
            "dataset_max": dataset_max,
            "quality": fv_peak / dataset_max if dataset_max > 0 else None,
            "robustness": _mean(chunk.robustness[j * samples : (j + 1) * samples]),
            "robustness_views": TRIALS,
            "top": top,
            "top_classes": _class_counts(top),
            "bottom": (_save_examples(inputs, examples, examples.bottom(c), "bottom", unit_folder, extent)
                       if examples.bottom_values is not None else []),
            "seeds": [chunk.seed + j * samples + s for s in range(samples)],
            "warnings": list(dict.fromkeys(n for s in range(j * samples, (j + 1) * samples) for n in chunk.notes.get(s, []))),
        }
    return records


def _class_counts(examples: list[dict[str, Any]]) -> list[list[Any]] | None:
    """[label, count] of the examples' labels, most frequent first (ties by name); None without labels."""
    labels = [e["label"] for e in examples if e.get("label") is not None]
    if not labels:
        return None
    counts = Counter(labels)
    return [[label, n] for label, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _spatial_peaks(model: Model, layer: str, images: torch.Tensor, channels: list[int], samples: int) -> torch.Tensor:
    """(units, samples): each unit's largest activation anywhere on its own visualizations, seen
    without transforms (comparable to the dataset examples' spatial maxima)."""
    with torch.no_grad(), capture(model, [layer]) as cap:
        acts = cap(images.to(model.device, model.dtype))[layer]  # (units * samples, C[, H, W])
    index = torch.tensor([c for c in channels for _ in range(samples)], device=acts.device)
    chosen = acts[torch.arange(len(index)), index].reshape(len(index), -1)  # (units * samples, positions)
    return chosen.amax(1).view(len(channels), samples).cpu()


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
                      "box": list(box), "label": inputs.source.label(example.key)})
    return saved
