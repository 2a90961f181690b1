"""Attribution to a hidden layer: how much each position and channel contributed to an output.

The linear approximation of Building Blocks: for a score s (a class logit, or a later unit) and
the activations a of a layer, the attribution is ``a * ds/da`` per neuron (channel x position).
Summed over channels it is a spatial map; summed over positions, a score per channel. Max-pool
layers take the smooth (L2) surrogate gradient by default, as in Building Blocks.

    result = attribute(model, ["tabby", "Egyptian cat"], "chelsea", "act2")
    result.spatial        # (targets, H, W)
    result.channel        # (targets, C)
    everything = attribute_all_classes(model, "chelsea")   # 1000 classes, batched, at default_layer

Where the score is linear in the layer (after the last nonlinearity before global pooling: the
head activation ``act2`` of EfficientNet-Lite), the attribution sums exactly to the logit minus
its bias. Further down, one-step attribution only approximates: on Lite0 the class ranking from
summed attributions is already wrong at the ``blocks.4``/``blocks.5`` outputs.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..capture import Copies, capture
from ..errors import NeuronscopeError
from ..images import SheetDisplay, contact_sheet, heat_overlay, listing, save_sheet
from ..manifest import build_manifest, image_name, model_fields
from ..models.model import Model
from ..names import LOGITS
from ..overrides import smooth_maxpool
from ..units import Unit, parse_target, unit_score
from .agreement import agreement

PREVIEW_TARGETS = 8
"""At most this many targets (the strongest) in a notebook's picture of an attribution."""


@dataclass
class Attribution(SheetDisplay):
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
    method: str = "activation x gradient"
    """How ``values`` were computed: one step, or integrated gradients (``integrated.py``)."""
    baseline_scores: torch.Tensor | None = None
    """(targets,) for integrated gradients: the scores at the baseline activation, so that
    ``total`` is ``scores - baseline_scores`` up to the quadrature error."""
    agreement: float | None = None
    """``logit_agreement`` at the layer over all classes, where measured (``attribute_checked``,
    ``attribute_by``)."""
    origin: dict = field(default_factory=dict, repr=False)
    """The model (name and spec) and the image it was made from (set by the function that made it)."""

    @property
    def manifest(self) -> dict:
        """What made this attribution, and its sums: model, image, layer, targets, method, totals and
        scores (built when asked: an all-classes attribution is often made in a loop and never saved)."""
        baseline = None if self.baseline_scores is None else self.baseline_scores.tolist()
        return build_manifest("attribution", **self.origin, layer=self.layer, targets=self.targets, method=self.method,
                              totals=self.total.tolist(), scores=self.scores.tolist(), logit_agreement=self.agreement,
                              baseline_scores=baseline)

    def select(self, indices: Sequence[int]) -> Attribution:
        """The same attribution for the targets at ``indices`` only (e.g. some classes of all 1000)."""
        index = list(indices)
        return Attribution(self.layer, [self.targets[i] for i in index], self.values[index], self.activations,
                           self.scores[index], self.image, None if self.gradients is None else self.gradients[index],
                           self.method, None if self.baseline_scores is None else self.baseline_scores[index],
                           self.agreement, self.origin)

    def __repr__(self) -> str:
        totals = self.total.tolist()
        order = range(len(totals)) if len(totals) <= 3 else sorted(range(len(totals)), key=lambda i: -totals[i])
        shown = listing([f"{self.targets[i]} {totals[i]:+.2f}" for i in order])
        what = "targets:" if len(totals) <= 3 else "targets, strongest:"
        return f"Attribution({self.layer}, {len(totals)} {what} {shown})"

    def sheet(self, title: str | None = None) -> Image.Image:
        """The input, then where each target's attribution lies (heat over the image), captioned with
        its summed attribution: one row."""
        pictures = [self.image] + [heat_overlay(self.image, m) for m in self.spatial]
        captions = ["input"] + [f"{t} ({v:+.2f})" for t, v in zip(self.targets, self.total.tolist())]
        return contact_sheet(pictures, captions, columns=len(pictures), title=title or f"{self.layer}: attribution")

    def save(self, path: str | Path) -> Path:
        """The sheet, titled with the model, layer and method, as a PNG at ``path`` and the manifest
        beside it (.json)."""
        title = f"{self.origin.get('model', '')} {self.layer}: attribution ({self.method})".lstrip()
        return save_sheet(path, self.sheet(title=title), self.manifest)

    def preview(self) -> Image.Image:
        """The sheet of the strongest ``PREVIEW_TARGETS`` targets (all 1000 classes would be one huge row)."""
        if len(self.targets) <= PREVIEW_TARGETS:
            return self.sheet()
        return self.select(self.total.argsort(descending=True)[:PREVIEW_TARGETS].tolist()).sheet()

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


def attribute(model: Model, targets: Sequence[str | int], image: str | np.ndarray | torch.Tensor,
              layer: str | None = None, *, size: int | tuple[int, int] | None = None, smooth: bool = True) -> Attribution:
    """Attribution of each target (a class by name or index, or a later unit like ``blocks.6.0:3``)
    on one image (path, bundled photo, RGB array, or a prepared (1, C, H, W) tensor) to ``layer``
    (default ``default_layer``)."""
    parsed = [parse_target(model, t) for t in nonempty(targets)]
    found = _attribute(model, model.input(image, size), _layer(model, layer), parsed, smooth)
    found.origin = origin(model, image)
    return found


def attribute_all_classes(model: Model, image: str | np.ndarray | torch.Tensor, layer: str | None = None, *,
                          size: int | tuple[int, int] | None = None, smooth: bool = True,
                          chunk: int = 100) -> Attribution:
    """Attribution of every class to ``layer`` (default ``default_layer``) at once: the rest of the
    network runs on ``chunk`` copies of the layer's activations and one backward pass gives
    ``chunk`` classes' gradients."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output to attribute")
    targets = [Unit(LOGITS, k) for k in range(model.num_classes)]
    found = _attribute(model, model.input(image, size), _layer(model, layer), targets, smooth, chunk)
    found.origin = origin(model, image)
    return found


def attribute_checked(model: Model, targets: Sequence[str | int], image: str | np.ndarray | torch.Tensor,
                      layer: str | None = None) -> tuple[Attribution, float]:
    """``attribute`` with its check: the attribution of ``targets`` and the ``logit_agreement`` at
    ``layer`` over all classes (also kept as its ``agreement``), from one all-classes pass whose rows
    serve class targets directly."""
    everything = attribute_all_classes(model, image, layer)
    agreement = logit_agreement(everything)
    units = [parse_target(model, t) for t in nonempty(targets)]
    if all(unit.layer == LOGITS for unit in units):  # classes: already in the all-classes pass
        found = everything.select([unit.channel for unit in units])
    else:
        found = attribute(model, targets, image, layer)
    found.agreement = agreement
    return found, agreement


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
    return agreement(result.total, result.scores)


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
    return Attribution(layer, [label_of(model, t) for t in targets], torch.cat(values).cpu(), activation.cpu(),
                       torch.cat(scores).cpu(), x[0].detach().cpu(), torch.cat(gradients).cpu())


def origin(model: Model, image) -> dict:
    """The ``origin`` of a result made from ``image`` by ``model``: their names (and the model's spec)."""
    return {**model_fields(model), "image": image_name(image)}


def label_of(model: Model, unit: Unit) -> str:
    if unit.layer == LOGITS and model.labels:
        return model.labels[unit.channel]
    return str(unit)


def nonempty(values: Sequence) -> list:
    values = list(values)
    if not values:
        raise NeuronscopeError("no targets given: name classes (like 'tabby' or 281) or later units")
    return values


def _layer(model: Model, layer: str | None) -> str:
    return model.layer(layer).name if layer is not None else default_layer(model)
