"""Attribution to a hidden layer: how much each position and channel contributed to an output.

The linear approximation of Building Blocks: for a score s (a class logit, or a later unit) and
the activations a of a layer, the attribution is ``a * ds/da`` per neuron (channel x position).
Summed over channels it is a spatial map; summed over positions, a score per channel. Max-pool
layers take the smooth (L2) surrogate gradient by default, as in Building Blocks.

    result = attribute(model, "chelsea", "act2", ["tabby", "Egyptian cat"])
    result.spatial        # (targets, H, W)
    result.channel        # (targets, C)
    everything = attribute_all_classes(model, "chelsea", "act2")   # 1000 classes, batched

Where the score is linear in the layer (after the last nonlinearity before global pooling: the
head activation ``act2`` of EfficientNet-Lite), the attribution sums exactly to the logit minus
its bias. Further down, one-step attribution only approximates: on Lite0 the class ranking from
summed attributions is already wrong at the ``blocks.4``/``blocks.5`` outputs.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from ..capture import Copies, capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..overrides import smooth_maxpool
from ..units import Unit, parse_target, unit_score


@dataclass
class Attribution:
    """``a * ds/da`` at one layer of one image, for several targets."""

    layer: str
    targets: list[str]
    values: torch.Tensor
    """(targets, C, H, W) attribution per neuron."""
    activations: torch.Tensor
    """(C, H, W) the layer's activations on the image."""
    scores: torch.Tensor
    """(targets,) each target's score (logit or unit value) on the image."""
    image: torch.Tensor
    """(3, H, W) the prepared input."""
    gradients: torch.Tensor | None = None
    """(targets, C, H, W) ``ds/da`` (kept so other decompositions of ``a`` can be attributed)."""

    def select(self, indices: Sequence[int]) -> Attribution:
        """The same attribution for the targets at ``indices`` only (e.g. some classes of all 1000)."""
        index = list(indices)
        return Attribution(self.layer, [self.targets[i] for i in index], self.values[index], self.activations,
                           self.scores[index], self.image, None if self.gradients is None else self.gradients[index])

    @property
    def spatial(self) -> torch.Tensor:
        """(targets, H, W): summed over channels."""
        return self.values.sum(1)

    @property
    def channel(self) -> torch.Tensor:
        """(targets, C): summed over positions."""
        return self.values.flatten(2).sum(2)

    @property
    def total(self) -> torch.Tensor:
        """(targets,): summed over everything."""
        return self.values.flatten(1).sum(1)


def attribute(model: Model, image: str | np.ndarray | torch.Tensor, layer: str, targets: Sequence[str | int],
              *, size: int | tuple[int, int] | None = None, smooth: bool = True) -> Attribution:
    """Attribution of each target (a class by name or index, or a later unit like ``blocks.6.0:3``)
    to ``layer`` for one image (path, bundled photo, RGB array, or a prepared (1, C, H, W) tensor)."""
    parsed = [parse_target(t, model) for t in _nonempty(targets)]
    return _attribute(model, model.input(image, size), model.layer(layer).name, parsed, smooth)


def attribute_all_classes(model: Model, image: str | np.ndarray | torch.Tensor, layer: str, *,
                          size: int | tuple[int, int] | None = None, smooth: bool = True,
                          chunk: int = 100) -> Attribution:
    """Attribution of every class to ``layer`` at once: the rest of the network runs on ``chunk``
    copies of the layer's activations and one backward pass gives ``chunk`` classes' gradients."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output to attribute")
    targets = [Unit(LOGITS, k) for k in range(model.num_classes)]
    return _attribute(model, model.input(image, size), model.layer(layer).name, targets, smooth, chunk)


def default_layer(model: Model) -> str:
    """Where class attribution is trustworthy by default: the last layer with spatial extent
    (for EfficientNet-Lite the head activation ``act2``, after which the network is pooling and
    a linear classifier, so attributions sum exactly to logit minus bias)."""
    spatial = [info.name for info in model.all_layers() if info.spatial]
    if not spatial:
        raise NeuronscopeError(f"{model.name} has no layer with spatial extent")
    return spatial[-1]


def logit_agreement(result: Attribution) -> float:
    """Correlation, over all targets, between summed attribution and score: near 1 where one-step
    attribution decomposes the logits (late layers), low where the class ranking breaks down."""
    totals, scores = result.total.double(), result.scores.double()
    return float(torch.corrcoef(torch.stack([totals, scores]))[0, 1])


def _attribute(model: Model, x: torch.Tensor, layer: str, targets: list[Unit], smooth: bool,
               chunk: int = 1) -> Attribution:
    model.spatial_layer(layer)
    deeper = {t.layer for t in targets} - {LOGITS}
    for unit_layer in deeper:
        if model.depth(unit_layer) <= model.depth(layer):
            raise NeuronscopeError(f"target layer '{unit_layer}' must come after '{layer}'")
    groups = [targets[i : i + chunk] for i in range(0, len(targets), chunk)]
    values, gradients, scores, activation = [], [], [], None
    overrides = smooth_maxpool(model.module) if smooth else nullcontext()
    with overrides, torch.enable_grad():
        for group in groups:
            copies = Copies(len(group))
            needed = [layer, *sorted(deeper, key=model.depth), *([LOGITS] if any(t.layer == LOGITS for t in group) else [])]
            with capture(model, needed, replace={layer: copies}) as cap:
                acts = cap(x)
            chosen = torch.stack([unit_score(acts, t, i) for i, t in enumerate(group)])
            (grad,) = torch.autograd.grad(chosen.sum(), copies.tensor)
            a = copies.tensor.detach()
            values.append(a * grad)
            gradients.append(grad.detach())
            scores.append(chosen.detach())
            activation = a[0]
    return Attribution(layer, [_label(model, t) for t in targets], torch.cat(values).cpu(), activation.cpu(),
                       torch.cat(scores).cpu(), x[0].detach().cpu(), torch.cat(gradients).cpu())


def _label(model: Model, unit: Unit) -> str:
    if unit.layer == LOGITS and model.labels:
        return model.labels[unit.channel]
    return str(unit)


def _nonempty(values: Sequence) -> list:
    values = list(values)
    if not values:
        raise NeuronscopeError("no targets given: name classes (like 'tabby' or 281) or later units")
    return values
