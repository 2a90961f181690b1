"""Views shared by a layer's units: strongest weights to the neighbouring gallery layers, and the
classes each channel supports where attribution (one-step or integrated gradients, whichever
agrees better with the logits) can be trusted at that layer."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..attribution.hidden import attribute, attribute_all_classes, logit_agreement
from ..attribution.integrated import class_support
from ..circuits.expanded import expanded_weights
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples.topk import LayerExamples
from ..models.model import Model
from ..predict import classify

NEIGHBOURS = 6
"""Strongest input and output units listed per unit."""
AGREEMENT = 0.8
"""Least correlation between summed attribution and logits (over 50 classes) for class views."""
CLASS_EXAMPLES = 3
"""A unit's class attribution is averaged over its top dataset examples, this many."""
GRADIENT, INTEGRATED = "activation x gradient", "integrated gradients"
"""The two attribution methods of class views; the gallery uses the one that agrees better."""
CLASS_DEPTH = 0.5
"""Class views only in the deeper half of a model: below it every class spreads over generic
edges and textures (Building Blocks: very low layers are noisy) and the pass costs the most."""
GALLERY_STEPS = 16
"""Integrated-gradients path points in the gallery: enough to rank classes (the sums are then
within a few percent of the logits' changes; completeness to 1e-3 needs 1000-2000 at blocks.4)."""


def neighbours(model: Model, earlier: str, later: str) -> tuple[dict[str, list], dict[str, list], int]:
    """Expanded weights from ``earlier`` to ``later``: for every channel of ``later`` its strongest
    inputs, for every channel of ``earlier`` its strongest outputs, as (channel, signed strength)
    lists, and the window used: the earlier layer's whole grid at the model's input size, so
    weights of distant layers are read where they fit in the image (``clip``), in one pass."""
    window = min(model.spatial_layer(earlier).spatial)
    weights = expanded_weights(model, later, earlier, window=window, clip=True)
    inputs = {str(c): weights.top_inputs(j, NEIGHBOURS) for j, c in enumerate(weights.targets)}
    outputs = {str(i): weights.top_outputs(i, NEIGHBOURS) for i in range(weights.weights.shape[2])}
    return inputs, outputs, window


def agreements(model: Model, image: np.ndarray, layer: str) -> dict[str, float]:
    """How well each attribution method at ``layer`` decomposes the logits on ``image``: the
    correlation of summed attribution and logit over the image's top 10 classes and 40 evenly
    spaced others, for one-step attribution (``GRADIENT``) and integrated gradients (``INTEGRATED``)."""
    top = [prediction.index for prediction in classify(model, [image], top=10)[0]]
    spread = [int(i) for i in np.linspace(0, model.num_classes - 1, 40).round()]
    targets = list(dict.fromkeys(top + spread))
    found = {GRADIENT: round(logit_agreement(attribute(model, targets, image, layer)), 4)}
    try:
        found[INTEGRATED] = round(class_support(model, image, layer, steps=GALLERY_STEPS).agreement(targets), 4)
    except NeuronscopeError:  # a model without forward-mode derivatives: one-step attribution only
        found[INTEGRATED] = None
    return found


def best_method(found: dict[str, float]) -> str:
    """The method with the higher agreement (one-step attribution on a tie: it is cheaper)."""
    integrated = found.get(INTEGRATED)
    return INTEGRATED if integrated is not None and integrated > found[GRADIENT] else GRADIENT


def unit_classes(model: Model, layer: str, channels: Sequence[int], examples: LayerExamples,
                 source: ImageSource, top: int = 5, method: str = GRADIENT) -> dict[int, list[tuple[str, float]]]:
    """For each channel, the classes its activation supports most, averaged over the channel's top
    dataset examples: attribution of all classes at ``layer`` by ``method``, one pass per distinct
    image (for integrated gradients, along the shares of only the channels that image serves)."""
    wanted = {c: [e.key for e in examples.top(c)[:CLASS_EXAMPLES]] for c in channels}
    per_image: dict[tuple, torch.Tensor] = {}  # (image, channel) -> (classes,)
    for key in sorted({k for keys in wanted.values() for k in keys}):
        serves = [c for c, keys in wanted.items() if key in keys]
        if method == INTEGRATED:
            support = class_support(model, source.load(key), layer, serves, steps=GALLERY_STEPS, total=False)
            per_image.update({(key, c): support.per_channel[:, j] for j, c in enumerate(serves)})
        else:
            result = attribute_all_classes(model, source.load(key), layer).channel  # (classes, C)
            per_image.update({(key, c): result[:, c] for c in serves})
    classes = {}
    for c, keys in wanted.items():
        mean = torch.stack([per_image[(k, c)] for k in keys]).mean(0)
        order = mean.argsort(descending=True)[:top]
        classes[c] = [(model.labels[int(i)] if model.labels else str(int(i)), float(mean[i])) for i in order]
    return classes
