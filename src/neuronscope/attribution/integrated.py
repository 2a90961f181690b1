"""Integrated gradients from a hidden layer: attribution that adds up to the score at any depth.

One-step attribution ``a * ds/da`` decomposes a score only where the score is linear in the layer
(after the last nonlinearity). Integrated gradients take the gradient along the straight path from
a baseline activation ``b`` (zeros by default) to ``a``:

    A = (a - b) * mean_n ds/da (b + t_n (a - b)),   t_n = (n + 1/2) / N   (midpoint rule)

so that ``sum A = s(a) - s(b)`` up to the quadrature error (completeness), at every layer.

    result = integrated_attribute(model, ["tabby"], "chelsea", "blocks.4.2")      # reverse mode
    support = class_support(model, "chelsea", "blocks.4.2", channels=[0, 5, 7])  # every class at once

``integrated_attribute`` gives per-neuron maps for a few targets (one backward pass per batch of
path points). ``class_support`` gives, for every class at once, the attribution summed over each
chosen channel's positions (and over the whole layer): a forward-mode derivative along the
channel's share of ``a - b``, which costs one forward pass per channel and path point, not one
backward pass per class.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.autograd import forward_ad

from ..capture import capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..units import parse_target, unit_score
from .agreement import agreement
from .hidden import Attribution, attribute_checked, default_layer, label_of, nonempty, origin

DEFAULT_STEPS = 64
"""Path points. The midpoint rule's error falls as 1/steps on piecewise-linear networks: on
Lite0 (chelsea's top class) 64 give 8.8e-3 relative at ``blocks.4.2`` and 3.7e-3 at ``blocks.5.3``,
enough to rank classes; 1e-3 takes 2048 and 1024 (``benchmarks/agreement.py``)."""
MAX_BATCH = 128
"""Most path points run through the rest of the network at once."""


def path_fractions(steps: int) -> torch.Tensor:
    """The midpoints (n + 1/2) / N of N equal steps from baseline (0) to activation (1)."""
    if not isinstance(steps, int) or steps < 1:
        raise NeuronscopeError(f"steps must be a positive integer, got {steps!r}")
    return (torch.arange(steps, dtype=torch.float64) + 0.5) / steps


class _PathPoints:
    """A ``replace`` function for ``capture``: the rest of the network sees the layer's activation
    ``a`` replaced by points ``b + t (a - b)`` of the path, ``repeat`` times over."""

    def __init__(self, fractions: torch.Tensor, baseline: torch.Tensor | None, repeat: int = 1) -> None:
        self.fractions, self.baseline, self.repeat = fractions, baseline, repeat
        self.activation = self.delta = self.tensor = None  # set by the forward pass

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        a = output.detach()[:1]
        b = torch.zeros_like(a) if self.baseline is None else self.baseline.to(a.device, a.dtype).expand_as(a)
        self.activation, self.delta = a, a - b
        t = self.fractions.to(a.device, a.dtype).view(-1, *([1] * (a.dim() - 1)))
        points = (b + t * self.delta).repeat(self.repeat, *([1] * (a.dim() - 1)))
        self.tensor = points.requires_grad_(True)
        return self.tensor


def integrated_attribute(model: Model, targets: Sequence[str | int], image, layer: str | None = None, *,
                         steps: int = DEFAULT_STEPS, baseline: torch.Tensor | None = None,
                         size: int | tuple[int, int] | None = None) -> Attribution:
    """Integrated-gradients attribution of each target (a class or a later unit) on one image to
    ``layer`` (default ``default_layer``); ``baseline``: the activation the path starts from
    (default zeros), broadcastable to the layer's (1, C, H, W). Its ``total`` equals
    ``scores - baseline_scores`` up to the quadrature error of ``steps`` path points."""
    units = [parse_target(model, t) for t in nonempty(targets)]
    name = model.spatial_layer(layer).name if layer is not None else default_layer(model)
    for unit in units:
        if unit.layer != LOGITS and model.depth(unit.layer) <= model.depth(name):
            raise NeuronscopeError(f"target layer '{unit.layer}' must come after '{name}'")
    x, fractions = model.input(image, size), path_fractions(steps)
    per_batch = max(1, MAX_BATCH // steps)
    values, scores, starts, gradients = [], [], [], []
    needed = sorted({u.layer for u in units} - {LOGITS}, key=model.depth) + ([LOGITS] if any(u.layer == LOGITS for u in units) else [])
    with torch.enable_grad():
        for first in range(0, len(units), per_batch):
            group = units[first : first + per_batch]
            path = _PathPoints(torch.cat([fractions, torch.tensor([0.0, 1.0], dtype=fractions.dtype)]), baseline, len(group))
            with capture(model, [name, *needed], replace={name: path}) as cap:
                acts = cap(x)
            points = steps + 2  # the path's midpoints, then its two ends (for the scores)
            chosen = torch.stack([unit_score(acts, u, k * points + n) for k, u in enumerate(group) for n in range(points)])
            (grad,) = torch.autograd.grad(chosen.sum(), path.tensor)
            grad = grad.view(len(group), points, *grad.shape[1:])[:, :steps].mean(1)
            ends = chosen.detach().view(len(group), points)
            values.append(path.delta * grad)
            gradients.append(grad)
            scores.append(ends[:, -1])
            starts.append(ends[:, -2])
    return Attribution(name, [label_of(model, u) for u in units], torch.cat(values).cpu(), path.activation[0].cpu(),
                       torch.cat(scores).cpu(), x[0].detach().cpu(), torch.cat(gradients).cpu(),
                       method=f"integrated gradients ({steps} steps)", baseline_scores=torch.cat(starts).cpu(),
                       origin=origin(model, image))


@dataclass
class ClassSupport:
    """Integrated-gradients attribution of every class to some channels of a layer, for one image."""

    layer: str
    channels: list[int]
    per_channel: torch.Tensor
    """(classes, channels): attribution summed over each channel's positions."""
    total: torch.Tensor | None
    """(classes,): attribution summed over the whole layer (all channels); None when not asked for."""
    logits: torch.Tensor
    """(classes,) on the image."""
    baseline_logits: torch.Tensor
    """(classes,) with the layer's activation replaced by the baseline."""
    labels: tuple[str, ...]

    def agreement(self, classes: Sequence[int] | None = None) -> float:
        """Correlation between summed attribution and logit over ``classes`` (default all), as
        ``logit_agreement`` measures it for one-step attribution."""
        if self.total is None:
            raise NeuronscopeError("this ClassSupport was made with total=False: call class_support with total=True")
        return agreement(self.total, self.logits, classes)

    def top_classes(self, channel: int, n: int = 5) -> list[tuple[str, float]]:
        """The n classes ``channel`` supports most, with their attribution."""
        column = self.per_channel[:, self.channels.index(channel)]
        return [(self.labels[int(i)], float(column[i])) for i in column.argsort(descending=True)[:n]]


def class_support(model: Model, image, layer: str, channels: Sequence[int] | None = None, *,
                  steps: int = DEFAULT_STEPS, baseline: torch.Tensor | None = None,
                  size: int | tuple[int, int] | None = None, total: bool = True) -> ClassSupport:
    """For every class, its integrated-gradients attribution to each of ``channels`` (default
    none: the layer's total only) of ``layer`` on one image, by forward-mode derivatives: along
    each channel's share of ``a - b`` (and along all of it for the total) at every path point.
    ``total=False`` skips the whole layer's total (and the agreement it gives): one direction
    fewer per path point, which halves the work for a single channel."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output to attribute")
    info = model.spatial_layer(layer)
    chosen = [] if channels is None else [int(c) for c in channels]
    bad = [c for c in chosen if not 0 <= c < info.channels]
    if bad:
        raise NeuronscopeError(f"channels {bad} are out of range for {info.name} (0..{info.channels - 1})")
    if not chosen and not total:
        raise NeuronscopeError("class_support needs channels, or total=True, to have anything to attribute")
    x, fractions = model.input(image, size), path_fractions(steps)
    directions = len(chosen) + int(total)  # each channel's share, then the whole layer
    sums = None
    with torch.no_grad(), capture(model, [info.name]) as cap:  # stops after the layer
        a = cap(x)[info.name][:1]
    b = torch.zeros_like(a) if baseline is None else baseline.to(a.device, a.dtype).expand_as(a)
    delta = a - b
    tangents = torch.stack([_channel_share(delta[0], c) for c in chosen] + [delta[0]] * total)  # (D, C, H, W)
    ends = _logits_at(model, x, info.name, torch.cat([b, a]))  # the path's two ends
    items = [(t, d) for t in fractions.tolist() for d in range(directions)]
    for first in range(0, len(items), MAX_BATCH):
        part = items[first : first + MAX_BATCH]
        primal = torch.cat([b + t * delta for t, _ in part])
        tangent = tangents[[d for _, d in part]]
        derivative = _logit_derivative(model, x, info.name, primal, tangent)  # (items, classes)
        index = torch.tensor([d for _, d in part], device=derivative.device)
        step = torch.zeros(directions, derivative.shape[1], dtype=torch.float64, device=derivative.device)
        step.index_add_(0, index, derivative.double())
        sums = step if sums is None else sums + step
    mean = (sums / steps).float().cpu()
    labels = model.labels or tuple(str(i) for i in range(model.num_classes))
    per_channel = mean[: len(chosen)].T.contiguous()
    return ClassSupport(info.name, chosen, per_channel, mean[-1] if total else None, ends[1].cpu(), ends[0].cpu(),
                        tuple(labels))


def _channel_share(delta: torch.Tensor, channel: int) -> torch.Tensor:
    share = torch.zeros_like(delta)
    share[channel] = delta[channel]
    return share


def _logits_at(model: Model, x: torch.Tensor, layer: str, activations: torch.Tensor) -> torch.Tensor:
    """The logits with ``layer``'s activation replaced by each of ``activations``."""
    with torch.no_grad(), capture(model, [layer, LOGITS], replace={layer: lambda _: activations}) as cap:
        return cap(x)[LOGITS].detach()


def _logit_derivative(model: Model, x: torch.Tensor, layer: str, primal: torch.Tensor,
                      tangent: torch.Tensor) -> torch.Tensor:
    """d logits / d eps at ``layer``'s activation ``primal + eps * tangent``, per item (forward mode)."""
    return logit_derivative_along(model, x, layer, lambda _: (primal, tangent))


def logit_derivative_along(model: Model, x: torch.Tensor, layer: str,
                           dual_of: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], *,
                           hint: str = "use integrated_attribute (reverse mode) for a few classes instead"
                           ) -> torch.Tensor:
    """d logits / d eps, per item, with ``layer``'s output ``a`` replaced by ``primal + eps *
    tangent``, where ``(primal, tangent) = dual_of(a)`` (forward mode; the batch may differ from
    ``x``'s). ``hint`` ends the error raised for a model with an operation forward mode lacks."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel has no forward mode
    try:
        with torch.no_grad(), forward_ad.dual_level():
            with capture(model, [layer, LOGITS], replace={layer: lambda out: forward_ad.make_dual(*dual_of(out))}) as cap:
                logits = cap(x)[LOGITS]
            derivative = forward_ad.unpack_dual(logits).tangent
    except NotImplementedError as error:  # an operation without forward-mode derivatives
        raise NeuronscopeError(f"{model.name} runs an operation without forward-mode derivatives after '{layer}' "
                               f"({str(error).splitlines()[0]}); {hint}") from None
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    if derivative is None:
        raise NeuronscopeError(f"the logits of {model.name} do not depend on '{layer}' by forward-mode derivatives")
    return derivative


METHODS = ("gradient", "integrated")
"""``attribute``'s methods: one-step activation x gradient, or integrated gradients."""


def attribute_by(model: Model, targets: Sequence[str | int], image, layer: str | None = None, method: str = "gradient",
                 steps: int = DEFAULT_STEPS) -> tuple[Attribution, float]:
    """The attribution of ``targets`` on ``image`` at ``layer`` (default ``default_layer``) by
    ``method`` and its agreement with the logits over all classes (``logit_agreement``; for
    integrated gradients, ``ClassSupport.agreement``), which the attribution also keeps."""
    if method not in METHODS:
        raise NeuronscopeError(f"unknown attribution method '{method}': choose one of {', '.join(METHODS)}")
    if method == "gradient":
        return attribute_checked(model, targets, image, layer)
    layer = layer if layer is not None else default_layer(model)
    agreement = class_support(model, image, layer, steps=steps).agreement()
    found = integrated_attribute(model, targets, image, layer, steps=steps)
    found.agreement = agreement
    return found, agreement
