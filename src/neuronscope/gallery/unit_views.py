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

from ..data.sources import ImageSource
from ..examples.inputs import ExampleImages
from ..examples.topk import Example, LayerExamples, crop_box
from ..featurevis.render import render_units
from ..featurevis.robustness import TRIALS, crop_robustness
from ..images import save_png
from ..interpretability.checks import converged
from ..models.model import Model
from ..readout import channel_peaks
from ..units import Unit
from .config import GalleryConfig

CROP_SIZE = 96
"""Side of a dataset-example crop on the unit page, in pixels."""
TOP_SIZE = 80
"""Side of a unit's strongest example where it stands in for a unit without a page (as strip thumbnails)."""
TOP_FOLDER = "examples"
"""``<layer>/examples/<channel>.png``: every channel's strongest example."""


@dataclass
class RenderedChunk:
    """A chunk's pictures and measurements, before anything is written: what a worker sends back.

    ``images`` (units * samples, 3, H, W) on the CPU, unit-major; ``values`` the objective per
    image; ``peaks`` (units, samples) the spatial peak of each unit on its own images;
    ``robustness`` per image; ``notes`` the render warnings by image index; ``seed`` the first
    image's seed (image i uses ``seed + i``); ``converged`` per image, whether its objective had
    stopped rising by the last step (None: too few steps to judge, or a worker that did not say)."""

    layer: str
    channels: list[int]
    images: torch.Tensor
    values: list[float]
    peaks: torch.Tensor
    robustness: list[float]
    notes: dict[int, list[str]]
    seed: int
    converged: list[bool | None] | None = None


def render_pictures(model: Model, layer: str, channels: list[int], config: GalleryConfig) -> RenderedChunk:
    """Render consecutive ``channels`` of ``layer`` together and measure them; writes nothing.
    Unit c's sample s uses seed ``render.seed + c * samples + s``, whoever renders it."""
    samples = config.samples
    render = replace(config.render, seed=config.render.seed + channels[0] * samples, progress=False)
    units = [Unit(layer, c) for c in channels]
    result = render_units(model, units, render, samples=samples, diversity=config.diversity if samples > 1 else 0.0)
    if result.interrupted:  # nothing of a partial chunk is recorded; the next run renders it again
        raise KeyboardInterrupt
    each = [Unit(layer, c) for c in channels for _ in range(samples)]
    peaks = channel_peaks(model, result.images, each).view(len(channels), samples)
    robustness = crop_robustness(model, result.images, each)
    return RenderedChunk(layer, list(channels), result.images.detach().cpu(), result.values.tolist(), peaks,
                         list(robustness), dict(result.notes), render.seed, converged(result.history))


def write_chunk(model: Model, chunk: RenderedChunk, config: GalleryConfig, folder: Path, examples: LayerExamples,
                images: ExampleImages, source: ImageSource,
                extent: tuple[int, int] | None) -> dict[tuple[str, int], dict[str, Any]]:
    """Write each unit's files of a rendered chunk into ``folder/<channel>/`` and return their
    manifest records; example crops are ``extent`` (h, w) around each example's peak
    (``examples.crop_extent``), cut from ``images`` (source items decoded once per build)."""
    samples, layer = config.samples, chunk.layer
    inputs = _Inputs(model, images, source, examples.input_size)
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
            "converged": (chunk.converged or [None] * len(chunk.values))[j * samples : (j + 1) * samples],
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


class _Inputs:
    """Source items as the model saw them (from the build's ``ExampleImages``), with their labels."""

    def __init__(self, model: Model, images: ExampleImages, source: ImageSource, size: tuple[int, int]) -> None:
        self.model, self.images, self.source, self.size = model, images, source, size

    def __getitem__(self, key: str) -> np.ndarray:
        return self.images.example_image(self.model, key, self.size)


def write_top_examples(model: Model, examples: LayerExamples, images: ExampleImages,
                       extent: tuple[int, int] | None, folder: Path) -> str:
    """Every channel's strongest example as ``<folder>/examples/<channel>.png`` (``TOP_SIZE``
    px, ``extent`` around its peak); returns the folder's name."""
    inputs = _Inputs(model, images, images.source, examples.input_size)
    for c in range(examples.channels):
        best = examples.top(c)[0]
        crop = crop_box(inputs[best.key], examples.box(best.y, best.x, extent), size=TOP_SIZE)
        save_png(folder / TOP_FOLDER / f"{c}.png", crop)
    return TOP_FOLDER


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
