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
    return top_classes(model, logits, top)


def top_classes(model: Model, logits: torch.Tensor, top: int = 5) -> list[list[Prediction]]:
    """The ``top`` classes (softmax over ``logits``, (N, classes)) of each of N images."""
    probabilities = logits.softmax(dim=1)
    k = min(top, logits.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    labels = model.labels or tuple(str(i) for i in range(logits.shape[1]))
    return [
        [Prediction(int(i), labels[int(i)], float(p), float(logits[row, int(i)])) for p, i in zip(values[row], indices[row])]
        for row in range(len(logits))
    ]


@dataclass(frozen=True)
class Verdict:
    """How a model classifies an image made for one of its classes, viewed as a user would."""

    image: str
    target: int
    label: str
    top: list[Prediction]
    """The top classes with ``classify``'s defaults (centre crop at the model's input size)."""
    whole: list[Prediction]
    """The top classes of the whole image (``classify --whole``), as it was rendered."""

    @property
    def rank(self) -> int | None:
        """1-based rank of the target among ``top`` (None: not among them)."""
        return next((r for r, p in enumerate(self.top, 1) if p.index == self.target), None)

    def to_dict(self) -> dict:
        def rows(predictions: list[Prediction]) -> list[dict]:
            return [{"class": p.index, "label": p.label, "probability": round(p.probability, 6)} for p in predictions]
        return {"image": self.image, "class": self.target, "label": self.label, "rank": self.rank,
                "top": rows(self.top), "whole": rows(self.whole)}

    def summary(self) -> str:
        first = self.top[0]
        verdict = "top-1" if self.rank == 1 else (f"rank {self.rank}" if self.rank else f"not in the top {len(self.top)}")
        return f"{self.label}: classified as {first.label} ({first.probability:.3f}), {verdict}"


def verdicts(model: Model, images: Sequence[str], targets: Sequence[int], top: int = 5) -> list[Verdict]:
    """Classify images made for ``targets`` (class indices) as a user opening them would: with the
    defaults of ``classify`` (centre crop) and whole."""
    cropped, whole = classify(model, images, top=top), classify(model, images, top=top, crop=False)
    labels = model.labels or tuple(str(i) for i in range(model.num_classes or 0))
    return [Verdict(str(image), int(k), labels[int(k)], c, w) for image, k, c, w in zip(images, targets, cropped, whole)]
