"""The one optimization loop: every image neuronscope makes is optimized here.

    param = make_param("fourier", (128, 128), seeds=[0, 1])
    run = optimize(model, objectives.channel("blocks.4.2", 7), param, LoopConfig(steps=256))

Each step: images from the parameterization -> one random affine warp per item (or one shared
warp) -> the model, run through ``capture`` up to the deepest layer the objective reads -> the
objective -> the optimizer. ``render`` (units), caricatures, circuits' cell pictures and
dictionary icons are objectives and parameterizations handed to this loop.

Extension points: ``callbacks`` (called every step with a `Step`; returning True stops; see
``callbacks`` for a stop criterion and a progress bar),
``LoopConfig.optimizer`` (a name or a factory of a torch optimizer), ``fixed`` images that ride
in the batch without being optimized (a caricature's reference), and Ctrl-C, which ends the
loop early and returns the partial result with ``interrupted=True``.

One loop configuration: ``LoopConfig`` declares and checks every setting of the loop once.
``RenderConfig`` and ``CaricatureConfig`` are LoopConfigs that add the settings of their
images (size, parameterization, seed, ...) by dataclass inheritance, and ``optimize`` takes them
as they are. Inheritance rather than a nested ``loop`` field because the configs stay flat:
``RenderConfig(steps=128, size=64)`` and ``dataclasses.replace(config, steps=...)`` read as
before, and ``asdict`` gives the same flat settings, so manifests written before still load
(``from_dict``) and the gallery's pinned fingerprints do not change.
"""
from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from tqdm.auto import tqdm

from ..capture import capture
from ..errors import NeuronscopeError
from ..manifest import to_jsonable
from ..models.fuse import fast_copy
from ..names import INPUT
from ..overrides import REDIRECT_STEPS, frozen_weights, redirected_relu
from .callbacks import Callback, Step
from .param.base import ImageParam
from .transforms import RandomAffine, TransformConfig, preset
from .transforms import from_json as transforms_from_json

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float], torch.optim.Optimizer]
"""Makes the optimizer from the parameterization's parameters and the learning rate."""


class RenderWarning(UserWarning):
    """Something about a render the user should know (a dead unit, a zero gradient)."""


def adam(parameters: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The default optimizer: Adam, as Lucid."""
    return torch.optim.Adam(parameters, lr=lr)


def nadam(parameters: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """NAdam (Adam with Nesterov momentum), as MaCo's authors."""
    return torch.optim.NAdam(parameters, lr=lr)


OPTIMIZERS: dict[str, OptimizerFactory] = {"adam": adam, "nadam": nadam}
"""The optimizers a config can name."""

SCHEDULES = ("constant", "cosine")
"""Learning-rate schedules: ``constant`` (Lucid's), ``cosine`` (from the optimizer's rate down to
``FINAL_LR_FRACTION`` of it at the last step, half a cosine)."""
FINAL_LR_FRACTION = 0.05


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The factor on the optimizer's starting rate at 0-based ``step`` of ``steps`` under ``schedule``."""
    if schedule == "constant" or steps <= 1:
        return 1.0
    progress = step / (steps - 1)
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs (defaults: Lucid's recipe). Every setting that the loop reads is declared
    and checked here once; render and caricature configs inherit them."""

    steps: int = 256
    """Optimizer steps (Lucid uses 512; on Lite0 channel objectives settle well before 256)."""
    lr: float | None = None
    """Learning rate; None: the parameterization's own (``ImageParam.default_lr``: Lucid's 0.05
    for spectra and pixels, 1.0 for MaCo, whose phases need large steps)."""
    transforms: TransformConfig | str | None = None
    """A TransformConfig or a preset name: ``lucid`` (standard_transforms), ``article``, ``zoom``
    (Lucid's with zooms to 1.3), ``maco``, ``none``; None: ``lucid``, except in a render, which
    chooses per unit: ``zoom`` for units that read the whole image (see ``sizing``)."""
    shared_transforms: bool = False
    """One random draw per step for the whole batch (caricatures), instead of one per item."""
    redirect_steps: int = REDIRECT_STEPS
    """Steps with the redirected ReLU/ReLU6 gradient at the start (0 to disable)."""
    snapshots: tuple[int, ...] = ()
    """Steps (1-based) after which to keep a copy of the images (``k``: the image after k updates)."""
    fast: bool = True
    """Optimize through a copy of the model whose BatchNorms are folded into the convolutions, in
    channels-last memory (``models.fuse``): about 2x faster on a CPU, same outputs to float rounding."""
    optimizer: str | OptimizerFactory | None = None
    """``adam``, ``nadam`` (MaCo's authors) or a factory ``(parameters, lr) -> optimizer``; None: adam."""
    views: int = 1
    """Random views (transform draws) of each image per step; their gradients add up before the
    update (MaCo's authors use 6 crops per step)."""
    transparency: bool = False
    """Accumulate |d objective / d image| over the steps: where the image matters (MaCo's
    transparency map), returned as ``Optimized.transparency`` (a render's ``Result.alpha``)."""
    schedule: str = "constant"
    """Learning-rate schedule over the steps: ``constant`` or ``cosine`` (see ``SCHEDULES``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise NeuronscopeError(f"steps must be a positive integer, got {self.steps!r}")
        if self.lr is not None and not self.lr > 0:
            raise NeuronscopeError(f"lr must be positive, got {self.lr!r}")
        if self.transforms is not None:
            preset(self.transforms)
        if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS or \
                not (self.optimizer is None or isinstance(self.optimizer, str) or callable(self.optimizer)):
            raise NeuronscopeError(f"unknown optimizer '{self.optimizer}': choose one of {', '.join(OPTIMIZERS)}, "
                                   "or give a factory (parameters, lr) -> optimizer")
        if not isinstance(self.views, int) or self.views < 1:
            raise NeuronscopeError(f"views must be a positive integer, got {self.views!r}")
        if self.schedule not in SCHEDULES:
            raise NeuronscopeError(f"unknown schedule '{self.schedule}': choose one of {', '.join(SCHEDULES)}")

    @property
    def transform_config(self) -> TransformConfig:
        return preset(self.transforms if self.transforms is not None else "lucid")

    @property
    def optimizer_factory(self) -> OptimizerFactory:
        if self.optimizer is None or isinstance(self.optimizer, str):
            return OPTIMIZERS[self.optimizer or "adam"]
        return self.optimizer

    def to_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON, factories by name: what a manifest's ``config`` holds."""
        return to_jsonable({k: named(v) for k, v in asdict(self).items()})

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The config a manifest's ``config`` field describes (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NeuronscopeError(f"unknown {cls.__name__} settings {unknown}: expected {', '.join(sorted(known))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        if values.get("transforms") is not None:
            values["transforms"] = transforms_from_json(values["transforms"])
        return cls(**values)


def named(value: Any) -> Any:
    """A factory (a function, a class, a ``functools.partial`` of one) as its dotted name, with a
    partial's arguments; any other value as it is."""
    if isinstance(value, functools.partial):
        arguments = [*map(repr, value.args), *(f"{k}={v!r}" for k, v in sorted(value.keywords.items()))]
        return f"{named(value.func)}({', '.join(arguments)})"
    if callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return value


@dataclass
class Optimized:
    """What the loop returns."""

    images: torch.Tensor
    """(N, C, H, W) final images in [0, 1], on the CPU."""
    values: torch.Tensor
    """(N,) the objective on the final images, without transforms."""
    history: torch.Tensor
    """(steps run, N) the objective at every step."""
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    notes: dict[int, list[str]] = field(default_factory=dict)
    """Warnings per item index."""
    timing: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    """Ctrl-C ended the loop early; the images are the partial result."""
    stopped_at: int | None = None
    """The step after which a callback stopped the loop (None: all steps ran)."""
    transparency: torch.Tensor | None = None
    """(N, 1, H, W) with ``LoopConfig.transparency``: the summed |gradient| of each item's
    objective with respect to its image over all steps, scaled to [0, 1] per item."""


def optimize(model, objective, param: ImageParam, config: LoopConfig | None = None, *,
             labels: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
             fixed: torch.Tensor | None = None, callbacks: Sequence[Callback] = ()) -> Optimized:
    """Optimize ``param``'s images so that ``objective`` (summed over the items) goes up.

    Args:
        model: a `Model`.
        objective: an `Objective`; it sees the activations of the whole batch (``fixed`` first)
            plus ``"input"`` (the optimized images before transforms) and returns one value per
            optimized image.
        param: the parameterization (its batch is the number of optimized images).
        config: steps, learning rate, optimizer, transforms, redirected-ReLU steps, snapshots, fast
            copy, views, transparency (a `LoopConfig`; a render's or caricature's config is one).
        labels: names of the items, for warnings.
        seeds: seeds of the per-item transforms (default 0..N-1); with shared transforms the first.
        fixed: (F, C, H, W) images put in front of the batch every step, not optimized.
        callbacks: called after every step; one returning True stops the loop (a progress bar:
            ``callbacks.advancing(bar)``).
    """
    config = config or LoopConfig()
    count = param.batch
    labels = list(labels) if labels is not None else [str(i) for i in range(count)]
    seeds = list(seeds) if seeds is not None else list(range(count))
    offset = 0 if fixed is None else len(fixed)
    layers = objective.model_layers
    runner, memory_format = (fast_copy(model, keep=layers) if config.fast and layers
                             else (model, torch.contiguous_format))
    transform = RandomAffine(config.transform_config, seeds[:1] * (count + offset) if config.shared_transforms else
                             [*([seeds[0]] * offset), *seeds], shared=config.shared_transforms)
    opt = config.optimizer_factory(param.parameters(), config.lr if config.lr is not None else param.default_lr)
    starting_rates = [group["lr"] for group in opt.param_groups]  # a factory may set its own
    history, snapshots, notes = [], {}, {}
    step_box = [0]
    model_seconds, start = 0.0, time.perf_counter()
    interrupted, stopped_at = False, None
    transparency = None
    functional, unfixed = _unfixed_relus(model, layers, config.redirect_steps)
    with frozen_weights(runner.module), \
            redirected_relu(runner.module, lambda: step_box[0] < config.redirect_steps, functional=functional), \
            _maybe_capture(runner, layers) as cap:
        try:
            for step in range(config.steps):
                step_box[0] = step
                if config.schedule != "constant":
                    for group, rate in zip(opt.param_groups, starting_rates):
                        group["lr"] = rate * lr_factor(config.schedule, step, config.steps)
                opt.zero_grad(set_to_none=True)
                images = param()
                # the views and penalties read a leaf copy: their gradients add up there, and go
                # through the parameterization once (it can cost more than the model: MaCo at 1280 px)
                leaf = images.detach().requires_grad_(True)
                batch = leaf if fixed is None else torch.cat([fixed.to(leaf), leaf])
                values = 0.0
                for view in range(config.views):
                    warped = transform(batch)
                    model_input = warped.detach().contiguous(memory_format=memory_format).requires_grad_(True)
                    tick = time.perf_counter()
                    acts = _run(cap, model_input, runner, step) if cap is not None else {}
                    seen = _values(objective, {**acts, INPUT: leaf}, count) / config.views
                    (-seen.sum()).backward()
                    model_seconds += time.perf_counter() - tick
                    if step == 0 and view == 0 and cap is not None:
                        notes = _check_start(model_input.grad, labels, offset)
                        for i in range(count) if unfixed else ():
                            notes.setdefault(i, []).append(unfixed)
                    if model_input.grad is not None:
                        warped.backward(model_input.grad)
                    values = values + seen.detach()
                if leaf.grad is not None:
                    images.backward(leaf.grad)
                    if config.transparency:
                        alpha = leaf.grad.abs().sum(1, keepdim=True)
                        transparency = alpha if transparency is None else transparency + alpha
                opt.step()
                history.append(values.detach().cpu())
                if step + 1 in config.snapshots:  # the image after step + 1 updates
                    with torch.no_grad():
                        snapshots[step + 1] = param().detach().cpu()
                state = Step(step, images.detach(), values.detach())
                if any([bool(callback(state)) for callback in callbacks]):
                    stopped_at = step
                    break
        except KeyboardInterrupt:
            interrupted = True
        final = param().detach()
        final_values = _final_values(objective, cap, runner, final, fixed, count)
    if not history:
        history = [torch.full((count,), float("nan"))]
    return Optimized(final.cpu(), final_values, torch.stack(history), snapshots, notes,
                     {"total_s": time.perf_counter() - start, "model_s": model_seconds}, interrupted, stopped_at,
                     _scaled(transparency))


def _scaled(transparency: torch.Tensor | None) -> torch.Tensor | None:
    """Each item's accumulated map divided by its maximum (zero stays zero), on the CPU."""
    if transparency is None:
        return None
    peak = transparency.flatten(1).amax(1).clamp(min=1e-12).view(-1, 1, 1, 1)
    return (transparency / peak).cpu()


def progress_bar(total: int, what: str, enabled: bool = True):
    """The one kind of progress bar the loop's callers show."""
    return tqdm(total=total, desc=what[:60], unit="step", disable=not enabled, leave=False)


def _maybe_capture(model, layers: tuple[str, ...]):
    """Objectives on the image alone (fitting a parameterization to a photo) need no model."""
    return capture(model, layers) if layers else nullcontext(None)


def _values(objective, acts: dict, count: int) -> torch.Tensor:
    values = objective(acts)
    if values.dim() != 1 or values.shape[0] != count:
        raise NeuronscopeError(f"the objective '{objective.name}' gave values of shape {tuple(values.shape)}, "
                               f"expected one per optimized image ({count},)")
    return values


def _final_values(objective, cap, model, final: torch.Tensor, fixed: torch.Tensor | None, count: int) -> torch.Tensor:
    """The objective on the final images as they are (no transforms)."""
    batch = final if fixed is None else torch.cat([fixed.to(final), final])
    if objective.needs_graph:  # e.g. attribution directions take gradients inside the objective
        with torch.enable_grad():
            leaf = batch.clone().requires_grad_(True)
            acts = cap(leaf) if cap is not None else {}
            return _values(objective, {**acts, INPUT: final}, count).detach().cpu()
    with torch.no_grad():
        acts = cap(batch) if cap is not None else {}
        return _values(objective, {**acts, INPUT: final}, count).cpu()


def _run(cap, x: torch.Tensor, model, step: int) -> dict[str, torch.Tensor]:
    """Run the model; on the first step, turn a failure inside the network into a clear error."""
    if step > 0:
        return cap(x)
    try:
        return cap(x)
    except NeuronscopeError:
        raise
    except RuntimeError as error:
        raise NeuronscopeError(
            f"{model.name} failed on a {tuple(x.shape[-2:])} input (after the transforms); is it smaller than the "
            f"model accepts? ({str(error).splitlines()[0]})"
        ) from error


def _unfixed_relus(model, layers: tuple[str, ...], redirect_steps: int) -> tuple[bool, str | None]:
    """Whether the redirected ReLU must reach functional calls, and the warning (None if none)
    for the ReLUs it cannot reach: in-place functional calls and TorchScript code."""
    if not layers or redirect_steps <= 0:
        return False, None
    redirectable, in_place = model.functional_relus
    reasons = []
    if in_place:
        reasons.append(f"{in_place} in-place functional ReLU calls (F.relu_ or inplace=True)")
    if model.scripted:
        reasons.append("TorchScript code")
    if not reasons:
        return redirectable > 0, None
    note = (f"the redirected-ReLU gradient fix could not be applied to {' and '.join(reasons)} in {model.name}; "
            "units behind them may stay grey at the start")
    warnings.warn(note, RenderWarning, stacklevel=3)
    return redirectable > 0, note


def _check_start(grad: torch.Tensor | None, labels: list[str], offset: int) -> dict[int, list[str]]:
    """Warn about items whose objective has no gradient at the start (dead or saturated units)."""
    if grad is None:
        dead = list(range(len(labels)))
    else:
        norms = grad[offset:].flatten(1).norm(dim=1).tolist()
        dead = [i for i, norm in enumerate(norms) if norm == 0]
    notes = {}
    for i in dead:
        note = (f"{labels[i]}: the objective's gradient is zero at the start (a dead unit, or an activation "
                "saturated or cut off by ReLU6 for every input); its image will stay grey")
        warnings.warn(note, RenderWarning, stacklevel=4)
        notes[i] = [note]
    return notes
