"""Rendering: feature visualizations of objectives and units, on the one loop (``loop.optimize``).

    result = render(model, objectives.channel("blocks.4.2", 7))
    result = render_units(model, ["blocks.4.2:7", "logits:tabby"], RenderConfig(steps=256))
    result.save("out/")

Items of a batch are independent (own seed for the initial image and for the transforms), so a
batched render equals the same units rendered one by one. Every result carries a manifest from
which ``replay.rerender`` makes the same pixels again.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from ..errors import NeuronscopeError
from ..manifest import build_manifest, stable_hash
from ..models.digest import weights_digest
from ..models.model import Model
from ..overrides import REDIRECT_STEPS
from ..units import Unit, parse_unit
from . import objectives as obj
from .batching import batch_size, halved, run_index
from .loop import (
    OPTIMIZERS,
    LoopConfig,
    Optimized,
    OptimizerFactory,
    RenderWarning,
    optimize,
    progress_bar,
)
from .param import check_param, make_param
from .param.base import ImageParam
from .param.color import SQUASHES
from .result import Result, concat_results, slice_result
from .sizing import (
    SPATIAL_TRANSFORMS,
    input_side,
    layers_read_whole_image,
    unit_reads_whole_image,
    view_of,
)
from .transforms import TransformConfig, preset
from .transforms import from_json as transforms_from_json
from .objectives.units import describe, diversity_layer, units_objective

__all__ = ["DEFAULT_DIVERSITY_WEIGHT", "DEFAULT_LR", "RenderConfig", "RenderWarning", "Result", "diversity_layer",
           "render", "render_layer", "render_units"]

MIN_SIZE = 16
DEFAULT_LR = {"fourier": 0.05, "pixel": 0.05, "maco": 1.0}
"""Adam learning rates: Lucid's 0.05 for spectra and pixels; MaCo moves phases, which need ~1."""
DEFAULT_DIVERSITY_WEIGHT = 8.0
"""Diversity strength for channel objectives of EfficientNet-Lite (values of order 1-10): on
Lite0 the samples then differ clearly while each keeps about 70 % of the unit's activation."""
INIT_STEPS = 200
"""Steps that fit the parameterization to an ``init`` image before the render starts."""

ParamFactory = Callable[..., ImageParam]
"""``factory(size, seeds, channels, device=..., dtype=...)`` -> an ImageParam (e.g. a class)."""


@dataclass(frozen=True)
class RenderConfig:
    """How to render. Defaults give clear pictures on EfficientNet-Lite0 in a few seconds per unit."""

    steps: int = 256
    """Adam steps (Lucid uses 512; on Lite0 channel objectives settle well before 256)."""
    size: int | None = None
    """Side of the optimized image in pixels (the model sees it after the transforms); None: the
    model's input size for units that read the whole image (classes, pooled features), else 128
    (see ``sizing``: images judged whole must be made at the size they are viewed at)."""
    lr: float | None = None
    """Adam learning rate; None: the parameterization's default (``DEFAULT_LR``)."""
    param: str = "fourier"
    """``fourier`` (decorrelated 1/f spectrum), ``pixel`` or ``maco`` (phase only)."""
    decorrelate: bool | None = None
    """Decorrelated colour space (fourier and pixel; None: yes). MaCo has no such option."""
    squash: str | None = None
    """``sigmoid`` or ``clip`` (fourier and pixel; None: sigmoid). MaCo has no such option."""
    transforms: TransformConfig | str | None = None
    """A TransformConfig or a preset name: ``lucid`` (standard_transforms), ``article``, ``zoom``
    (Lucid's with zooms to 1.3), ``none``; None: ``zoom`` for units that read the whole image, else
    ``lucid`` (see ``sizing``)."""
    redirect_steps: int = REDIRECT_STEPS
    """Steps with the redirected ReLU/ReLU6 gradient at the start (0 to disable)."""
    seed: int = 0
    """Seed of item 0; item i of a batch uses seed + i."""
    snapshots: tuple[int, ...] = ()
    """Steps (1-based) at which to keep a copy of the images."""
    max_batch: int | None = None
    """Most images optimized together; None: 16 on a CPU (8-16 is the sweet spot of a 2-core
    CPU at 128 px; smaller images up to as many pixels, e.g. 64 at 64 px), 128 on an accelerator
    (where the free memory also sizes the batch)."""
    memory_budget_mb: int = 3072
    """Activation memory a batch may use; ``render_units`` sizes its batches to fit."""
    fast: bool = True
    """Render with a copy of the model whose BatchNorms are folded into the convolutions, in
    channels-last memory: about 2x faster on a CPU, same outputs to float rounding."""
    optimizer: str | None = None
    """``adam`` or ``nadam`` (MaCo's authors); None: adam."""
    views: int = 1
    """Random views (transform draws) per step, their gradients summed (MaCo's authors: 6)."""
    transparency: bool = False
    """Also return where each image matters: the accumulated |gradient| (``Result.alpha``)."""
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise NeuronscopeError(f"steps must be a positive integer, got {self.steps!r}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < MIN_SIZE):
            raise NeuronscopeError(f"size must be an integer of at least {MIN_SIZE} pixels (or None: chosen per unit), "
                                   f"got {self.size!r}")
        if self.lr is not None and not self.lr > 0:
            raise NeuronscopeError(f"lr must be positive, got {self.lr!r}")
        check_param(self.param)
        if self.param == "maco" and (self.squash is not None or self.decorrelate is not None):
            raise NeuronscopeError("MaCo has no squash or decorrelate option (it fixes the magnitude spectrum and "
                                   "optimizes phases); leave them unset, or choose param fourier or pixel")
        if self.squash is not None and self.squash not in SQUASHES:
            raise NeuronscopeError(f"unknown squash '{self.squash}': choose one of {', '.join(SQUASHES)}")
        if self.transforms is not None:
            preset(self.transforms)
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise NeuronscopeError(f"unknown optimizer '{self.optimizer}': choose one of {', '.join(OPTIMIZERS)}")
        if not isinstance(self.views, int) or self.views < 1:
            raise NeuronscopeError(f"views must be a positive integer, got {self.views!r}")
        if (self.max_batch is not None and self.max_batch < 1) or self.memory_budget_mb < 1:
            raise NeuronscopeError("max_batch and memory_budget_mb must be positive")

    def for_view(self, model: Model, whole: bool) -> RenderConfig:
        """This config with the size and transforms it leaves to the unit (None) set for a unit
        that reads the whole image or not (``sizing.view_of``)."""
        side, default = view_of(model, whole)
        transforms = self.transforms if self.transforms is not None else default
        chosen = preset(transforms)
        if chosen.crop is not None and chosen.output is None:  # crops are shown to the model at its size
            transforms = replace(chosen, output=input_side(model))
        return replace(self, size=self.size if self.size is not None else side, transforms=transforms)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.param]

    @property
    def transform_config(self) -> TransformConfig:
        return preset(self.transforms if self.transforms is not None else SPATIAL_TRANSFORMS)

    def loop(self) -> LoopConfig:
        """The loop settings of this render."""
        return LoopConfig(steps=self.steps, lr=self.learning_rate, transforms=self.transform_config,
                          redirect_steps=self.redirect_steps, snapshots=tuple(self.snapshots), fast=self.fast,
                          views=self.views, transparency=self.transparency)

    @property
    def optimizer_factory(self) -> OptimizerFactory:
        return OPTIMIZERS[self.optimizer or "adam"]

    def pixel_settings(self) -> dict[str, Any]:
        """Every setting that changes pixels (not batch sizes, the progress bar or the transparency
        map); the optimizer and views only when not at their defaults, so that the pictures made
        before they existed keep their fingerprints."""
        unchanged = {"optimizer": None, "views": 1}
        return {k: v for k, v in asdict(self).items()
                if k not in ("progress", "max_batch", "memory_budget_mb", "transparency")
                and not (k in unchanged and v == unchanged[k])}

    def fingerprint(self, model: Model) -> str:
        """One hash of what decides the pixels of a render of ``model``: these settings and the
        model's weights (its name and input size too), so retrained or other weights never reuse
        pictures made before."""
        return stable_hash({"render": self.pixel_settings(), "model": model.name, "input_size": model.input_size,
                            "weights": weights_digest(model)})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderConfig:
        """The config a manifest's ``config`` field describes (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NeuronscopeError(f"unknown render settings {unknown}: expected {', '.join(sorted(known))}")
        values = dict(data)
        if "transforms" in values:
            values["transforms"] = transforms_from_json(values["transforms"])
        if "snapshots" in values:
            values["snapshots"] = tuple(values["snapshots"])
        return cls(**values)


def render(model: Model, objective: obj.Objective, config: RenderConfig | None = None, *,
           batch: int = 1, seeds: Sequence[int] | None = None, labels: Sequence[str] | None = None,
           param: ParamFactory | None = None, init=None, callbacks: Sequence = (),
           optimizer: OptimizerFactory | None = None) -> Result:
    """Optimize ``batch`` images to maximize ``objective`` (summed over the items).

    Item i starts from seed ``config.seed + i`` (or ``seeds[i]``). ``param``: a factory of the
    image parameterization instead of ``config.param``; ``init``: an image (photo name, path,
    array or tensor) every item starts from; ``callbacks`` and ``optimizer`` (default: the
    config's): see ``loop.optimize``.
    """
    config = (config or RenderConfig()).for_view(model, layers_read_whole_image(model, objective.model_layers))
    seeds = list(seeds) if seeds is not None else [config.seed + i for i in range(batch)]
    labels = list(labels) if labels is not None else [objective.name] * len(seeds)
    progress = progress_bar(config.steps, f"render {objective.name}", config.progress)
    try:
        image = _image_param(model, config, seeds, param, init)
        run = optimize(model, objective, image, config.loop(), labels=labels, seeds=seeds, callbacks=callbacks,
                       optimizer=optimizer or config.optimizer_factory, progress=progress)
    finally:
        progress.close()
    result = _result(run, labels, [None] * len(seeds))
    result.manifest = _manifest(model, config, seeds, labels, call="render", objective=objective.spec or objective.name,
                                rebuildable=objective.spec is not None, param_factory=_name(param), init=_init_name(init))
    return result


def render_units(model: Model, units: Sequence[str | Unit], config: RenderConfig | None = None, *,
                 samples: int = 1, diversity: float = 0.0, param: ParamFactory | None = None,
                 callbacks: Sequence = (), optimizer: OptimizerFactory | None = None) -> Result:
    """Render many units (addresses like ``"blocks.4.2:7"`` or parsed Units) in memory-sized batches.

    Each unit gets ``samples`` images; with ``diversity`` > 0 the samples of a unit are pushed
    apart (``objective - diversity * diversity(layer)``). Unit j's sample s uses seed
    ``config.seed + j * samples + s``, so rendering one unit alone with that seed gives the same image.
    """
    config = config or RenderConfig()
    if samples < 1:
        raise NeuronscopeError(f"samples must be at least 1, got {samples}")
    if not units:
        raise NeuronscopeError("no units to render")
    parsed = [u if isinstance(u, Unit) else parse_unit(model, u) for u in units]
    wholes = _wholes(model, parsed)
    unit_chunks, chunk = _chunks(model, parsed, wholes, config, samples)
    progress = progress_bar(config.steps * len(unit_chunks), f"render {len(parsed)} units", config.progress)
    results: dict[int, Result] = {}
    timing = {"total_s": 0.0, "model_s": 0.0}
    interrupted = False
    queue = list(unit_chunks)
    try:
        while queue:
            whole, unit_ids = queue.pop(0)
            sized = config.for_view(model, whole)
            objective = units_objective(model, [parsed[j] for j in unit_ids], samples, diversity)
            seeds = [config.seed + j * samples + s for j in unit_ids for s in range(samples)]
            labels = [describe(model, parsed[j]) for j in unit_ids for _ in range(samples)]
            image = _image_param(model, sized, seeds, param, None)
            try:
                run = optimize(model, objective, image, sized.loop(), labels=labels, seeds=seeds,
                               callbacks=callbacks, optimizer=optimizer or config.optimizer_factory, progress=progress)
            except Exception as error:  # noqa: BLE001 - only out-of-memory is handled here
                # items are independent, so half a chunk renders the same pixels: halve and retry
                queue[:0] = [(whole, half) for half in halved(unit_ids, error, model.device)]
                progress.total += config.steps
                continue
            part = _result(run, labels, [parsed[j] for j in unit_ids for _ in range(samples)])
            timing = {k: timing[k] + part.timing[k] for k in timing}
            for position, j in enumerate(unit_ids):
                results[j] = slice_result(part, position * samples, (position + 1) * samples)
            if run.interrupted:
                interrupted = True
                break
    finally:
        progress.close()
    done = [j for j in range(len(parsed)) if j in results]
    combined = concat_results([results[j] for j in done])
    combined.timing, combined.interrupted = timing, interrupted
    seeds = [config.seed + j * samples + s for j in done for s in range(samples)]
    combined.manifest = _manifest(
        model, config, seeds, combined.labels, call="render_units", units=[str(parsed[j]) for j in done],
        samples=samples, diversity=diversity, batch_size=chunk, param_factory=_name(param),
        sizes=[config.for_view(model, wholes[j]).size for j in done])
    return combined


def render_layer(model: Model, layer: str, channels: Sequence[int] | None = None,
                 config: RenderConfig | None = None) -> Result:
    """Channel visualizations of a layer (default: all of its channels)."""
    info = model.layer(layer)
    chosen = list(range(info.channels)) if channels is None else list(channels)
    return render_units(model, [Unit(info.name, c) for c in chosen], config)


def _wholes(model: Model, units: list[Unit]) -> list[bool]:
    """Whether each unit reads the whole image (``sizing``); a neuron's answer depends only on its
    layer, so each layer is measured once."""
    known: dict[tuple, bool] = {}
    for unit in units:
        key = (unit.layer, unit.position is not None)
        if key not in known:
            known[key] = unit_reads_whole_image(model, unit)
    return [known[(u.layer, u.position is not None)] for u in units]


def _chunks(model: Model, units: list[Unit], wholes: list[bool], config: RenderConfig,
            samples: int) -> tuple[list[tuple[bool, list[int]]], int]:
    """Batches of unit indices, each of one view (whole image or not) and in the model's run
    order, sized to the memory budget; with the largest batch size used."""
    chunks, largest = [], samples
    for whole in sorted(set(wholes)):
        members = [j for j in range(len(units)) if wholes[j] == whole]
        order = sorted(members, key=lambda j: run_index(model, units[j].layer))
        chunk = batch_size(model, [units[j] for j in members], config.for_view(model, whole), samples)
        largest = max(largest, chunk)
        chunks += [(whole, order[i : i + chunk // samples]) for i in range(0, len(order), chunk // samples)]
    return chunks, largest


# --- parameterization and start ----------------------------------------------------------------


def _image_param(model: Model, config: RenderConfig, seeds: list[int], factory: ParamFactory | None,
                 init) -> ImageParam:
    size = (config.size, config.size)
    if factory is not None:
        image = factory(size, seeds, model.input_channels, device=model.device, dtype=model.dtype)
        if not isinstance(image, ImageParam):
            raise NeuronscopeError(f"the param factory returned {type(image).__name__}, not an ImageParam")
    else:
        options = {k: v for k, v in (("decorrelate", config.decorrelate), ("squash", config.squash)) if v is not None}
        image = make_param(config.param, size, seeds, model.input_channels, device=model.device, dtype=model.dtype,
                           **options)
    if init is not None:  # the fit's own rate: the render's may be tuned for its objective
        start_from(model, image, init, DEFAULT_LR[config.param] if factory is None else DEFAULT_LR["pixel"])
    return image


def start_from(model: Model, image: ImageParam, init, lr: float, steps: int = INIT_STEPS) -> float:
    """Fit ``image``'s parameters so that every item shows ``init`` (a photo name, path, array or
    tensor), on the one loop with an objective on the pixels alone. Returns the mean absolute error."""
    target = model.input(init, image.size, crop_fraction=1.0)[0]
    closeness = -obj.pixel_distance(target)
    optimize(model, closeness, image, LoopConfig(steps=steps, lr=lr, transforms="none", redirect_steps=0, fast=False))
    with torch.no_grad():
        return float((image() - target).abs().mean())


def _result(run: Optimized, labels: list[str], units: list[Unit | None]) -> Result:
    return Result(run.images, list(labels), run.values, run.history, run.snapshots, timing=run.timing,
                  notes=run.notes, units=list(units), interrupted=run.interrupted, alpha=run.transparency)


# --- bookkeeping ----------------------------------------------------------------------------


def _manifest(model: Model, config: RenderConfig, seeds: list[int], labels: list[str], **extra) -> dict:
    return build_manifest(
        "render", model=model, weights=weights_digest(model), input_size=model.input_size,
        device=str(model.device), labels=labels, seeds=seeds, config=replace(config, progress=False),
        fingerprint=config.fingerprint(model), **{k: v for k, v in extra.items() if v is not None},
    )


def _name(factory) -> str | None:
    return None if factory is None else f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', factory)}"


def _init_name(init) -> str | None:
    return init if isinstance(init, str) else (None if init is None else "an image given in Python")
