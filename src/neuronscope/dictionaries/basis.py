"""Neurons and features side by side: the neurons a feature is made of, the features a neuron
takes part in, and how spread out each basis is over the other at one layer.

Weights are those of each feature's direction in the layer's own units (``Dictionary.directions``,
unit rows). "How many" is a participation ratio, ``1 / sum(p_i^2)`` of shares ``p`` summing to 1:
1 when everything sits on one element, n when it is spread evenly over n.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import NeuronscopeError
from .dictionary import Dictionary


def feature_neurons(dictionary: Dictionary, feature: int, top: int = 8) -> list[tuple[int, float]]:
    """(channel, signed weight) of the ``top`` channels with the largest weight in ``feature``'s
    direction, largest magnitude first."""
    _check(feature, dictionary.features, "feature")
    row = dictionary.directions()[feature]
    order = row.abs().argsort(descending=True)[:top]
    return [(int(c), float(row[c])) for c in order]


def neuron_features(dictionary: Dictionary, channel: int, top: int = 8,
                    rates: torch.Tensor | None = None) -> list[tuple[int, float]]:
    """(feature, signed weight on ``channel``) of the ``top`` features that weigh most on the
    channel, largest magnitude first; with firing ``rates``, features that never fire are left out."""
    _check(channel, dictionary.channels, "channel")
    column = dictionary.directions()[:, channel]
    score = column.abs() if rates is None else column.abs() * (rates > 0)
    order = score.argsort(descending=True)[:top]
    return [(int(f), float(column[f])) for f in order if score[f] > 0]


@dataclass(frozen=True)
class BasisSummary:
    """How neurons and features of one layer spread over each other."""

    neurons_per_feature: torch.Tensor
    """(F,) participation ratio of each feature's squared direction weights over the channels."""
    features_per_neuron: torch.Tensor
    """(C,) participation ratio, over the features, of each channel's squared weights times the
    features' firing rates: over how many features a neuron's use is spread."""

    def to_dict(self) -> dict:
        return {"neurons_per_feature_mean": round(float(self.neurons_per_feature.mean()), 3),
                "neurons_per_feature_median": round(float(self.neurons_per_feature.median()), 3),
                "features_per_neuron_mean": round(float(self.features_per_neuron.mean()), 3),
                "features_per_neuron_median": round(float(self.features_per_neuron.median()), 3)}


def basis_summary(dictionary: Dictionary, rates: torch.Tensor) -> BasisSummary:
    """The ``BasisSummary`` of ``dictionary`` whose features fire at ``rates`` (F,)."""
    if rates.shape != (dictionary.features,):
        raise NeuronscopeError(f"rates must have one value per feature ({dictionary.features}), got {tuple(rates.shape)}")
    squared = dictionary.directions().double().pow(2)  # rows sum to 1
    per_feature = 1 / squared.pow(2).sum(1)
    used = squared * rates.double().view(-1, 1)
    shares = used / used.sum(0, keepdim=True).clamp_min(1e-30)
    per_neuron = torch.where(used.sum(0) > 0, 1 / shares.pow(2).sum(0).clamp_min(1e-30), torch.zeros(()).double())
    return BasisSummary(per_feature.float(), per_neuron.float())


def _check(index: int, count: int, what: str) -> None:
    if not 0 <= index < count:
        raise NeuronscopeError(f"{what} {index} is out of range: the dictionary has {what}s 0..{count - 1}")
