"""The objective of a unit (``blocks.4.2:7``, ``logits:281``), and of a batch of units with
diverse samples; where the diversity term compares them; a unit's caption."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...names import LOGITS
from ...units import Unit
from .activations import channel, channels, class_logit, layer, neuron
from .base import Objective
from .items import diversity as diversity_term

if TYPE_CHECKING:
    from ...models.model import Model


def describe(model: Model, unit: Unit) -> str:
    """A unit's address, with the class name for class units (``logits:281 tabby``): for captions
    only; manifests store ``str(unit)``, which ``parse_unit`` reads back."""
    if unit.layer == LOGITS and unit.channel is not None and model.labels:
        return f"{unit} {model.labels[unit.channel]}"
    return str(unit)


def unit_objective(unit: Unit, batch: int | None = None) -> Objective:
    """The natural objective of a unit: class logit, neuron, channel, or the whole layer."""
    if unit.layer == LOGITS:
        return class_logit(unit.channel, batch=batch) if unit.channel is not None else layer(LOGITS, batch)
    if unit.channel is None:
        return layer(unit.layer, batch)
    if unit.position is not None:
        return neuron(unit.layer, unit.channel, *unit.position, batch=batch)
    return channel(unit.layer, unit.channel, batch=batch)


def units_objective(model: Model, units: list[Unit], samples: int, diversity: float) -> Objective:
    """One objective for a batch: item (k * samples + s) maximizes unit k; channels of one layer
    are vectorized into a single gather."""
    if all(u.channel is not None and u.position is None and u.layer != LOGITS for u in units) \
            and len({u.layer for u in units}) == 1:
        total = channels(units[0].layer, [u.channel for u in units for _ in range(samples)])
        scale = objective_scale(model, units[0].layer)
        total = total if scale == 1.0 else scale * total
    else:
        total = sum(objective_scale(model, u.layer) * unit_objective(u, batch=k * samples + s)
                    for k, u in enumerate(units) for s in range(samples))
    if diversity > 0 and samples > 1:
        for k, unit in enumerate(units):
            group = range(k * samples, (k + 1) * samples)
            total = total - diversity * diversity_term(diversity_layer(model, unit.layer), list(group))
    return total


def objective_scale(model: Model, layer: str) -> float:
    """What a unit's objective is multiplied by beside the diversity term: 1 for the network's own
    layers; a derived layer's ``objective_scale`` (a dictionary's features: its RMS vector length,
    which brings their pre-activations, about 1, to the size of the layer's channels, so one
    diversity weight weighs both alike)."""
    return float(model.derived[layer].objective_scale) if layer in model.derived else 1.0


def diversity_layer(model: Model, layer: str) -> str:
    """Where the diversity term compares samples: the curated layer nearest half the unit's depth.

    Comparing Gram matrices at the unit's own layer fights the objective (the unit dominates
    its layer's Gram); an earlier layer diversifies the textures and shapes that build the unit.
    """
    target = model.depth(layer)
    candidates = [info.name for info in model.layers if info.spatial and model.depth(info.name) <= target]
    if not candidates:
        return layer
    return min(candidates, key=lambda name: abs(model.depth(name) - target / 2))
