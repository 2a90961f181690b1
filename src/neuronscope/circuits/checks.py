"""Checks shared by the circuits techniques: a unit that is a channel of a spatial layer, layers in
order, and a layer that is never negative (post-ReLU)."""
from __future__ import annotations

from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..readout import layer_activations
from ..units import Unit, parse_unit


def spatial_channel(model: Model, unit: str, position: bool = False) -> Unit:
    """``unit`` parsed, which must be a channel of a layer with spatial extent (its neuron is taken
    at the centre unless ``position`` allows ``@x,y``)."""
    parsed = parse_unit(model, unit)
    if parsed.channel is None or parsed.layer == LOGITS or model.layer(parsed.layer).spatial is None:
        raise NeuronscopeError(f"give a channel of a spatial layer, like blocks.4.2:7 (got '{unit}')")
    if parsed.position is not None and not position:
        raise NeuronscopeError(f"'{unit}': the unit is taken at the centre of its layer; drop the '@x,y'")
    return parsed


def check_order(model: Model, source: str, layer: str) -> None:
    """``layer`` must run after ``source`` (its --from layer)."""
    if model.depth(layer) <= model.depth(source):
        raise NeuronscopeError(f"'{layer}' must come after '{source}' (its --from layer)")


def never_negative(model: Model, layer: str) -> bool:
    """Whether ``layer`` is never negative on a photo (post-ReLU): then a pattern over it is a direction
    to push its activations."""
    return bool(layer_activations(model, "chelsea", layer)[1].min() >= 0)
