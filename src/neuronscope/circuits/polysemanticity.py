"""How polysemantic a unit's firing looks: whether two distinct cases explain its contributions
from the layer before much better than one.

    examples = dataset_examples(model, source, ["blocks.5.3"])["blocks.5.3"]
    polysemanticity(model, examples, [0, 1, 2], source.load)     # {0: 0.12, 1: 0.31, ...}
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..examples.results import LayerExamples
from ..factorization import nmf
from ..models.model import Model
from .cases import contributions_to_channels
from .decompose import previous_layer

CASE_IMAGES = 64
"""Most images (the channels' top dataset examples) whose contributions measure polysemanticity."""
EXACT = 1e-6
"""One case whose relative error is below this explains the firing exactly: the unit scores 0 (the
ratio of two rounding errors would be noise)."""


def polysemanticity(model: Model, examples: LayerExamples, channels: Sequence[int], images: Callable[[str], Any],
                    seed: int = 0) -> dict[int, float]:
    """For each of ``channels`` of ``examples.layer``: ``(e1 - e2) / e1``, with ``e_k`` the
    relative error of k NMF cases (as ``circuits.firing_cases``) of its contribution vectors from
    the layer before, over the top dataset examples of all ``channels`` (at most
    ``CASE_IMAGES``; ``images(key)`` gives each). 0: one pattern explains its firing as well as
    two (or explains it exactly); towards 1: two distinct cases. All channels are read from one
    shared forward pass."""
    layer = examples.layer
    keys = list(dict.fromkeys(e.key for c in channels for e in examples.top(c)))[:CASE_IMAGES]
    x = torch.cat([model.input(images(key)) for key in keys])
    earlier = previous_layer(model, layer)
    gains = {}
    for c, samples in zip(channels, contributions_to_channels(model, layer, list(channels), x, earlier)):
        e1, e2 = (float(np.nan_to_num(nmf(samples, k, negatives="split", seed=seed).error)) for k in (1, 2))
        gains[c] = round(float((e1 - e2) / e1), 4) if e1 > EXACT else 0.0
    return gains
