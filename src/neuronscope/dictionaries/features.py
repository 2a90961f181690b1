"""Dictionary features used like units: their top dataset examples (from the
vectors of the pass, no second pass), and its feature visualization (the pre-activation as the
objective, a direction in the layer's own units)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NeuronscopeError
from ..examples.receptive import crop_extent, field_geometry, field_span
from ..examples.results import Example
from ..examples.topk import example_crop
from ..featurevis.render import RenderConfig, Result, render_units
from ..images import contact_sheet
from ..models.model import Model
from .dictionary import Dictionary
from .layer import FeatureLayer, with_features
from .samples import Vectors


@dataclass(frozen=True)
class FeatureExamples:
    """The top images of some features: for feature j, ``examples[j]`` best first."""

    features: list[int]
    examples: list[list[Example]]


def feature_examples(model: Model, dictionary: Dictionary, vectors: Vectors, features: Sequence[int],
                     top: int = 6) -> FeatureExamples:
    """Each feature's ``top`` images by its largest pre-activation over the image's positions, with
    the position and the box of its dataset-example crop (as the gallery crops). Needs the vectors of every position (``positions`` None)."""
    height, width = vectors.grid
    per_image = height * width
    if len(vectors) % per_image:
        raise NeuronscopeError("feature examples need the vectors of every position (collect with positions=None)")
    images = len(vectors) // per_image
    chosen = torch.as_tensor(list(features), dtype=torch.long)
    with torch.no_grad():
        pre = dictionary.pre_activation(vectors.vectors)[:, chosen]  # (N, J)
    grid = pre.view(images, per_image, len(chosen))
    best, where = grid.max(1)  # (images, J)
    keys = vectors.keys[::per_image]
    _, stride, offset = field_geometry(model, dictionary.layer, model.input_size)
    geometry = (crop_extent(model, dictionary.layer), stride, offset)  # the gallery's crop size
    found = []
    for j in range(len(chosen)):
        order = best[:, j].argsort(descending=True)[:top]
        found.append([_example(keys[i], float(best[i, j]), int(where[i, j]), width, geometry, model.input_size)
                      for i in order.tolist()])
    return FeatureExamples([int(f) for f in chosen], found)


def render_features(model: Model, dictionary: Dictionary, features: Sequence[int], config: RenderConfig | None = None) -> Result:
    """One feature visualization per feature: the units ``<layer>.features:<f>`` of
    ``with_features(model, dictionary)`` rendered as channels are (the mean over positions of the
    feature's pre-activation, a direction in the layer's units)."""
    name = FeatureLayer(dictionary).name
    return render_units(with_features(model, dictionary), [f"{name}:{int(f)}" for f in features], config)


def feature_sheet(model: Model, dictionary: Dictionary, source, shown: FeatureExamples, rendered: Result,
                  rates: torch.Tensor, cell: int = 112):
    """One row per feature: its visualization, then its top dataset examples (crops of the
    positions where it peaked), captioned with the pre-activation and the share of positions where
    the feature is active."""
    images, captions = [], []
    columns = 1 + max(len(e) for e in shown.examples)
    for j, feature in enumerate(shown.features):
        images.append(rendered.images[j])
        captions.append(f"feature {feature} · {100 * float(rates[feature]):.0f} %")
        for example in shown.examples[j]:
            images.append(example_crop(model, source, example, size=cell))
            captions.append(f"{example.value:.2f}")
        for _ in range(columns - 1 - len(shown.examples[j])):
            images.append(np.ones((cell, cell, 3), dtype=np.float32))
            captions.append("")
    quality = dictionary.manifest.get("quality", {})
    title = (f"{model.name} {dictionary.layer}: {dictionary.features} {dictionary.kind} features (% of positions where active)"
             + (f", k={dictionary.k}" if dictionary.k else "")
             + (f"; held out: explained variance {quality['explained_variance']:.2f}, spliced top-1 "
                f"{100 * quality['top1_agreement']:.0f} %" if quality.get("top1_agreement") is not None else ""))
    return contact_sheet(images, captions, columns=columns, cell=cell, title=title)


def _example(key: str, value: float, flat: int, width: int, geometry, size: tuple[int, int]) -> Example:
    y, x = divmod(flat, width)
    extent, stride, offset = geometry
    top, bottom = field_span(y, extent[0], stride[0], offset[0], size[0])
    left, right = field_span(x, extent[1], stride[1], offset[1], size[1])
    return Example(str(key), value, y, x, (top, left, bottom, right), size)
