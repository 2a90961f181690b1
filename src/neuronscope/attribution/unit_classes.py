"""The classes a unit supports: attribution of every class to its channel, averaged over the
unit's top dataset examples.

    examples = dataset_examples(model, source, ["blocks.5.3"])["blocks.5.3"]
    unit_classes(model, examples, [0, 1, 2], source.load)      # {0: [("tabby", 0.41), ...], ...}
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..examples.results import LayerExamples
from ..models.model import Model
from .hidden import attribute_all_classes
from .integrated import class_support
from .method import AGREEMENT_STEPS, GRADIENT, INTEGRATED

CLASS_EXAMPLES = 3
"""A unit's class attribution is averaged over its top dataset examples, this many."""


def unit_classes(model: Model, examples: LayerExamples, channels: Sequence[int], images: Callable[[str], Any],
                 top: int = 5, method: str = GRADIENT) -> dict[int, list[tuple[str, float]]]:
    """For each of ``channels`` of ``examples.layer``, the ``top`` classes its activation supports
    most (label, mean attribution), averaged over its ``CLASS_EXAMPLES`` top dataset examples;
    ``images(key)`` gives an example's image (e.g. ``source.load``, or a prepared input).
    ``method``: ``GRADIENT`` (attribution of all classes, one pass per distinct image) or
    ``INTEGRATED`` (integrated gradients along the shares of only the channels an image serves)."""
    layer = examples.layer
    wanted = {c: [e.key for e in examples.top(c)[:CLASS_EXAMPLES]] for c in channels}
    per_image: dict[tuple, torch.Tensor] = {}  # (image, channel) -> (classes,)
    for key in sorted({k for keys in wanted.values() for k in keys}):
        serves = [c for c, keys in wanted.items() if key in keys]
        if method == INTEGRATED:
            support = class_support(model, images(key), layer, serves, steps=AGREEMENT_STEPS, total=False)
            per_image.update({(key, c): support.per_channel[:, j] for j, c in enumerate(serves)})
        else:
            result = attribute_all_classes(model, images(key), layer).channel  # (classes, C)
            per_image.update({(key, c): result[:, c] for c in serves})
    classes = {}
    for c, keys in wanted.items():
        mean = torch.stack([per_image[(k, c)] for k in keys]).mean(0)
        order = mean.argsort(descending=True)[:top]
        classes[c] = [(model.labels[int(i)] if model.labels else str(int(i)), float(mean[i])) for i in order]
    return classes
