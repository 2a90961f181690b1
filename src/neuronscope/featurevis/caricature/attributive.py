"""Attributive caricatures: caricature only the evidence for a class or a later unit.

The direction is the reference's attribution ``a0 * dF/da0`` for a score F (a class logit or a
later unit), normalized to a maximum of 1 and detached, recomputed at every step on the
transformed reference so that it stays aligned with the caricature's activations.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...capture import capture
from ...errors import NeuronscopeError
from ...models.model import Model
from ...names import LOGITS
from ...overrides import linearized
from ...units import Unit, parse_target, unit_score
from .core import CaricatureConfig, Caricatures, Direction, _nonempty, _run


def attributive_caricature(model: Model, image: str | np.ndarray, layer: str, targets: Sequence[str | int],
                           config: CaricatureConfig | None = None, *, via: Sequence[str] = (),
                           specific: bool = False, positive: bool = False) -> Caricatures:
    """Caricatures of only the evidence for each target, at one layer.

    Args:
        targets: classes (``"tabby"``, ``281``) or later units (``"blocks.5.0:3"``); one caricature each.
        via: layers between ``layer`` and the target for the iterated, top-down variant: the
            attribution at the highest layer becomes the score of the next one down.
        specific: the neuron-specific variant for unit targets: ``a0 * w`` with ``w`` the unit's
            linearized input weights from ``layer`` (what that unit reads), instead of the attribution.
        positive: keep only the positive evidence (negative attribution set to 0). The signed
            default also pushes against counter-evidence everywhere; positive-only pictures put
            their structure where the evidence was and are easier to read.
    The objective is the plain dot product (p = 0) unless ``config.cosine_power`` says otherwise.
    """
    config = config or CaricatureConfig(cosine_power=0.0)
    info = model.layer(layer)
    chain = [model.layer(v).name for v in via]
    parsed = [parse_target(model, t) for t in _nonempty(targets, "targets")]
    if specific:
        if chain or any(t.layer == LOGITS for t in parsed):
            raise NeuronscopeError("the neuron-specific variant takes later units (like blocks.5.0:3), not classes or via")
        directions = [_weighted_reference(info.name, _input_weights(model, info.name, t)) for t in parsed]
    else:
        directions = [_attribution(info.name, chain, t, positive) for t in parsed]
    labels = [f"{info.name} · {_describe(model, t)}" for t in parsed]
    return _run(model, image, [info.name] * len(parsed), directions, labels, config, "attributive caricature",
                extra={"targets": [str(t) for t in parsed], "via": chain, "specific": specific, "positive": positive})


def _weighted_reference(layer: str, weights: torch.Tensor) -> Direction:
    def direction(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        a0 = acts[layer][0].detach()
        return a0 * weights.to(a0).view(-1, *([1] * (a0.dim() - 1)))

    return direction


def _attribution(layer: str, chain: list[str], target: Unit, positive: bool = False) -> Direction:
    """``a0 * dF/da0`` normalized to max 1, with F the target's score, passed down ``chain``."""

    def direction(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        score = unit_score(acts, target)
        for upper in reversed(chain):
            weight = normalized_attribution(acts[upper], score)
            score = (acts[upper][0] * weight).sum()
        attribution = normalized_attribution(acts[layer], score)
        return attribution.clamp(min=0) if positive else attribution

    direction.needs = (*chain, target.layer)
    return direction


def normalized_attribution(activations: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """``sg(a0 * dF/da0) / max`` for item 0 of a batch of activations: maximum exactly 1, detached."""
    (grad,) = torch.autograd.grad(score, activations, retain_graph=True)
    attribution = (activations[0] * grad[0]).detach()
    peak = attribution.max()
    if not peak > 0:
        raise NeuronscopeError("the attribution to this target is never positive here: nothing to caricature")
    return attribution / peak


def _input_weights(model: Model, layer: str, target: Unit) -> torch.Tensor:
    """The target's linearized weights on each channel of ``layer``, summed over positions."""
    if target.channel is None:
        raise NeuronscopeError(f"the neuron-specific variant needs a channel or neuron, got '{target}'")
    probe = torch.zeros(1, model.input_channels, *model.input_size, device=model.device, dtype=model.dtype)
    with linearized(model.module), capture(model, [layer, target.layer], grads=True) as cap:
        acts = cap(probe)
        unit_score(acts, target).backward()
    return cap.gradients[layer][0].flatten(1).sum(1).detach()


def _describe(model: Model, unit: Unit) -> str:
    if unit.layer == LOGITS and model.labels:
        return model.labels[unit.channel]
    return str(unit)


