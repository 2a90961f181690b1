"""Classification: the top classes of a model for photos."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .capture import capture
from .errors import NeuronscopeError
from .models.model import Model
from .names import LOGITS


@dataclass(frozen=True)
class Prediction:
    """One class of a top-k answer."""

    index: int
    label: str
    probability: float
    logit: float


def classify(model: Model, images: Sequence[str | np.ndarray], top: int = 5, crop: bool = True) -> list[list[Prediction]]:
    """The ``top`` classes (softmax over the logits) for each image (a path, a bundled photo
    name, or an RGB array), each prepared at the model's input size. ``crop=False`` keeps the
    whole image (no centre crop), as for rendered images, which use their full extent."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output (its output is not a (batch, classes) tensor)")
    if top < 1:
        raise NeuronscopeError(f"--top must be at least 1, got {top}")
    batch = torch.cat([model.input(image, crop_fraction=None if crop else 1.0) for image in images])
    with torch.no_grad(), capture(model, [LOGITS]) as cap:
        logits = cap(batch)[LOGITS]
    probabilities = logits.softmax(dim=1)
    k = min(top, logits.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    labels = model.labels or tuple(str(i) for i in range(logits.shape[1]))
    return [
        [Prediction(int(i), labels[int(i)], float(p), float(logits[row, int(i)])) for p, i in zip(values[row], indices[row])]
        for row in range(len(batch))
    ]
