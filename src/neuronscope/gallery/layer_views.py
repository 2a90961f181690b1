"""Views shared by a layer's units: strongest weights to the neighbouring gallery layers. (The
classes each channel supports come from ``attribution.unit_classes``.)"""
from __future__ import annotations

from ..circuits.expanded import expanded_weights
from ..models.model import Model

NEIGHBOURS = 6
"""Strongest input and output units listed per unit."""


def neighbours(model: Model, earlier: str, later: str) -> tuple[dict[str, list], dict[str, list], int]:
    """Expanded weights from ``earlier`` to ``later``: for every channel of ``later`` its strongest
    inputs, for every channel of ``earlier`` its strongest outputs, as (channel, signed strength)
    lists, and the window used: the earlier layer's whole grid at the model's input size, so
    weights of distant layers are read where they fit in the image (``clip``), in one pass."""
    window = min(model.spatial_layer(earlier).spatial)
    weights = expanded_weights(model, later, earlier, window=window, clip=True)
    inputs = {str(c): weights.top_inputs(j, NEIGHBOURS) for j, c in enumerate(weights.targets)}
    outputs = {str(i): weights.top_outputs(i, NEIGHBOURS) for i in range(weights.weights.shape[2])}
    return inputs, outputs, window
