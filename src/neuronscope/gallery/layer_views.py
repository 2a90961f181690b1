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
    inputs, for every channel of ``earlier`` its strongest outputs, as [channel, signed strength,
    share] lists, and the window used: the earlier layer's whole grid at the model's input size, so
    weights of distant layers are read where they fit in the image (``clip``), in one pass.

    The strength is the window norm of the pair's weights (signed by their sum); the share is its
    part of the unit's whole weight energy, ``strength**2`` over the sum of every channel's (all of a
    unit's inputs add up to 1, and so do its outputs). Raw strengths do not compare across layer
    pairs (through the linearized network, where every ReLU passes, Lite0's are near 1 between most
    gallery layers and near 1e4 from blocks.4.2 to blocks.5.3); shares do. Manifests written before
    shares keep [channel, strength] entries."""
    window = min(model.spatial_layer(earlier).spatial)
    weights = expanded_weights(model, later, earlier, window=window, clip=True)
    strength = weights.strength()  # (C1, C2), once for every unit (top_inputs/top_outputs recompute it per call)
    signed = strength * weights.sign()  # ranked as top_inputs/top_outputs rank it: the same lists
    energy = strength.double().pow(2)
    inputs = {str(c): _strongest(signed[:, j], energy[:, j], list(range(len(signed))))
              for j, c in enumerate(weights.targets)}
    outputs = {str(i): _strongest(signed[i], energy[i], weights.targets) for i in range(len(signed))}
    return inputs, outputs, window


def _strongest(signed: torch.Tensor, energy: torch.Tensor, channels: list[int]) -> list[list]:
    """The ``NEIGHBOURS`` strongest of one unit's weights as [channel, signed strength, share]."""
    total = float(energy.sum())
    order = signed.abs().argsort(descending=True)[:NEIGHBOURS]
    return [[channels[int(k)], float(signed[k]), _share(float(energy[k]) / total if total > 0 else 0.0)] for k in order]


def _share(value: float) -> float:
    """A share as the manifest keeps it: 6 significant digits are plenty for a percentage."""
    return float(f"{value:.6g}")


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
