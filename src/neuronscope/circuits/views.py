"""One unit seen through three objectives: neuron, channel and cosine-weighted direction."""
from __future__ import annotations

import torch

from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, Result, render
from ..models.model import Model
from .checks import spatial_channel


def objective_views(model: Model, unit: str, config: RenderConfig | None = None) -> Result:
    """A unit three ways, side by side (a ``Result`` of 3 images): its neuron at the centre, its whole
    channel, and the cosine-weighted direction of its channel (``dot * max(0.1, cos)``), which asks
    for inputs where this channel dominates the activation vector rather than merely being large."""
    parsed = spatial_channel(model, unit)
    basis = torch.zeros(model.layer(parsed.layer).channels)
    basis[parsed.channel] = 1.0
    objective = (obj.neuron(parsed.layer, parsed.channel, batch=0) + obj.channel(parsed.layer, parsed.channel, batch=1)
                 + obj.direction(parsed.layer, basis, cosine_power=1.0, batch=2))
    labels = [f"{parsed} neuron", f"{parsed} channel", f"{parsed} direction x cos"]
    return render(model, objective, config or RenderConfig(), batch=3, labels=labels)
