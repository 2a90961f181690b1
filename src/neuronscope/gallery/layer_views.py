"""Views shared by a layer's units: strongest weights to the neighbouring gallery layers. (The
classes each channel supports come from ``attribution.unit_classes``.)"""
from __future__ import annotations

import torch

from ..circuits.expanded import expanded_weights
from ..models.model import Model

NEIGHBOURS = 6
"""Strongest input and output units listed per unit."""


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
