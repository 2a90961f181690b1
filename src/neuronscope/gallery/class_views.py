"""Class units' evidence: how the gallery's model and other models classify a class's pictures,
viewed as a user opening the PNG would (``classify``'s defaults: centre crop at each model's own
input size). A class picture that only its own model accepts shows what that model needs, not
what the class looks like."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import load
from ..models.labels import imagenet_labels
from ..models.model import Model
from ..predict import verdicts
from .config import GalleryConfig

IMAGENET_JUDGES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
"""Models that ship with neuronscope and classify the 1000 ImageNet classes."""
TOP = 5
"""Classes listed per model and picture."""


def judge_names(model: Model, config: GalleryConfig) -> list[str]:
    """The models besides ``model`` that classify its class pictures: ``config.judges``, else the
    bundled ImageNet models when ``model`` has the ImageNet classes, else none."""
    if config.judges is not None:
        return [name for name in config.judges if name != model.name]
    if model.labels is not None and tuple(model.labels) == tuple(imagenet_labels()):
        return [name for name in IMAGENET_JUDGES if name != model.name]
    return []


class Judges:
    """The gallery's model and the other judges, each loaded once, when first needed."""

    def __init__(self, model: Model, names: list[str]) -> None:
        self.model, self.names = model, names
        self._loaded: dict[str, Model] = {}

    def models(self) -> list[Model]:
        for name in self.names:
            if name not in self._loaded:
                self._loaded[name] = load(name)
        return [self.model, *(self._loaded[name] for name in self.names)]

    def verdicts(self, pictures: list[Path], target: int) -> list[dict[str, Any]]:
        """For each model (the gallery's first), its top classes for each picture and the rank of
        ``target`` among them (None: not in the top ``TOP``)."""
        found = []
        for model in self.models():
            rows = verdicts(model, [str(p) for p in pictures], [target] * len(pictures), top=TOP)
            found.append({"model": model.name, "size": "x".join(map(str, model.input_size)),
                          "pictures": [{"rank": v.rank, "top": [[p.label, round(p.probability, 4)] for p in v.top]}
                                       for v in rows]})
        return found
