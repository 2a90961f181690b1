"""Rendering: feature visualizations of objectives and units, on the one loop (``loop.optimize``).

    result = render(model, objectives.channel("blocks.4.2", 7))
    result = render_units(model, ["blocks.4.2:7", "logits:tabby"], RenderConfig(steps=256))
    result.save("out/")

Items of a batch are independent (own seed for the initial image and for the transforms), so a
batched render equals the same units rendered one by one. Every result carries a manifest from
which ``replay.rerender`` makes the same pixels again.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from ..errors import NeuronscopeError
from ..manifest import build_manifest, stable_hash
from ..models.digest import weights_digest
from ..models.model import Model
from ..units import Unit, parse_unit
from . import objectives as obj
from .batching import batch_size, halved, run_index
from .callbacks import advancing
from .loop import LoopConfig, Optimized, RenderWarning, named, optimize, progress_bar
from .objectives.units import describe, diversity_layer, units_objective
from .param import ParamFactory, check_param, make_param
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

__all__ = ["DEFAULT_DIVERSITY_WEIGHT", "RenderConfig", "RenderWarning", "Result", "diversity_layer", "render",
           "render_layer", "render_units"]

MIN_SIZE = 16
DEFAULT_DIVERSITY_WEIGHT = 8.0
"""Diversity strength for channel objectives of EfficientNet-Lite (values of order 1-10): on
Lite0 the samples then differ clearly while each keeps about 70 % of the unit's activation."""
INIT_STEPS = 200
"""Steps that fit the parameterization to an ``init`` image before the render starts."""
UNCHANGED = {"optimizer": None, "views": 1, "shared_transforms": False, "schedule": "constant"}
"""Settings left out of ``pixel_settings`` at these values: the pictures made before the
settings existed keep their fingerprints."""


@dataclass(frozen=True)
class RenderConfig(LoopConfig):
    """How to render: the loop's settings (steps, lr, transforms, optimizer, views, ...: see
    `LoopConfig`) and the image's. Defaults give clear pictures on EfficientNet-Lite0 in a few
    seconds per unit."""

    size: int | None = None
    """Side of the optimized image in pixels (the model sees it after the transforms); None: the
    model's input size for units that read the whole image (classes, pooled features), else 128
    (see ``sizing``: images judged whole must be made at the size they are viewed at)."""
    param: str | ParamFactory = "fourier"
    """``fourier`` (decorrelated 1/f spectrum), ``pixel`` or ``maco`` (phase only), or a factory
    ``(size, seeds, channels, device=, dtype=) -> ImageParam`` (e.g. a ``functools.partial`` of a class)."""
    decorrelate: bool | None = None
    """Decorrelated colour space (fourier and pixel; None: yes). MaCo has no such option."""
    squash: str | None = None
    """``sigmoid`` or ``clip`` (fourier and pixel; None: sigmoid). MaCo has no such option."""
    seed: int = 0
    """Seed of item 0; item i of a batch uses seed + i."""
    max_batch: int | None = None
    """Most images optimized together; None: 16 on a CPU (8-16 is the sweet spot of a 2-core
    CPU at 128 px; smaller images up to as many pixels, e.g. 64 at 64 px), 128 on an accelerator
    (where the free memory also sizes the batch)."""
    memory_budget_mb: int = 3072
    """Activation memory a batch may use; ``render_units`` sizes its batches to fit."""
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size is not None and (not isinstance(self.size, int) or self.size < MIN_SIZE):
            raise NeuronscopeError(f"size must be an integer of at least {MIN_SIZE} pixels (or None: chosen per unit), "
                                   f"got {self.size!r}")
        check_param(self.param)
        if self.param == "maco" and (self.squash is not None or self.decorrelate is not None):
            raise NeuronscopeError("MaCo has no squash or decorrelate option (it fixes the magnitude spectrum and "
                                   "optimizes phases); leave them unset, or choose param fourier or pixel")
        if not isinstance(self.param, str) and (self.squash is not None or self.decorrelate is not None):
            raise NeuronscopeError("a param factory makes its own images: squash and decorrelate apply to the named "
                                   "parameterizations fourier and pixel; leave them unset")
        if self.squash is not None and self.squash not in SQUASHES:
            raise NeuronscopeError(f"unknown squash '{self.squash}': choose one of {', '.join(SQUASHES)}")
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
    def transform_config(self) -> TransformConfig:
        return preset(self.transforms if self.transforms is not None else SPATIAL_TRANSFORMS)

    def pixel_settings(self) -> dict[str, Any]:
        """Every setting that changes pixels (not batch sizes, the progress bar or the transparency
        map), factories by name; the optimizer, views and shared transforms only when not at
        their defaults (``UNCHANGED``), so that the pictures made before they existed keep their
        fingerprints."""
        return {k: named(v) for k, v in asdict(self).items()
                if k not in ("progress", "max_batch", "memory_budget_mb", "transparency")
                and not (k in UNCHANGED and v == UNCHANGED[k])}

    def fingerprint(self, model: Model) -> str:
        """One hash of what decides the pixels of a render of ``model``: these settings and the
        model's weights (its name and input size too), so retrained or other weights never reuse
        pictures made before."""
        return stable_hash({"render": self.pixel_settings(), "model": model.name, "input_size": model.input_size,
                            "weights": weights_digest(model)})


def render(model: Model, objective: obj.Objective, config: RenderConfig | None = None, *,
           batch: int = 1, seeds: Sequence[int] | None = None, labels: Sequence[str] | None = None,
           init=None, callbacks: Sequence = ()) -> Result:
    """Optimize ``batch`` images to maximize ``objective`` (summed over the items).

    Item i starts from seed ``config.seed + i`` (or ``seeds[i]``). ``init``: an image (photo
    name, path, array or tensor) every item starts from; ``callbacks``: see ``loop.optimize``.
    """
    config = (config or RenderConfig()).for_view(model, layers_read_whole_image(model, objective.model_layers))
    seeds = list(seeds) if seeds is not None else [config.seed + i for i in range(batch)]
    labels = list(labels) if labels is not None else [objective.name] * len(seeds)
    progress = progress_bar(config.steps, f"render {objective.name}", config.progress)
    try:
        image = _image_param(model, config, seeds, init)
        run = optimize(model, objective, image, config, labels=labels, seeds=seeds,
                       callbacks=[*callbacks, advancing(progress)])
    finally:
        progress.close()
    result = _result(run, labels, [None] * len(seeds))
    result.manifest = _manifest(model, config, seeds, labels, call="render", objective=objective.spec or objective.name,
                                rebuildable=objective.spec is not None, init=_init_name(init))
    return result


def render_units(model: Model, units: Sequence[str | Unit], config: RenderConfig | None = None, *,
                 samples: int = 1, diversity: float = 0.0, callbacks: Sequence = ()) -> Result:
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
            image = _image_param(model, sized, seeds, None)
            try:
                run = optimize(model, objective, image, sized, labels=labels, seeds=seeds,
                               callbacks=[*callbacks, advancing(progress)])
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
        samples=samples, diversity=diversity, batch_size=chunk,
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


def _image_param(model: Model, config: RenderConfig, seeds: list[int], init) -> ImageParam:
    options = {k: v for k, v in (("decorrelate", config.decorrelate), ("squash", config.squash)) if v is not None}
    image = make_param(config.param, (config.size, config.size), seeds, model.input_channels, device=model.device,
                       dtype=model.dtype, **options)
    if init is not None:  # the fit's own rate: the render's may be tuned for its objective
        start_from(model, image, init)
    return image


def start_from(model: Model, image: ImageParam, init, lr: float | None = None, steps: int = INIT_STEPS) -> float:
    """Fit ``image``'s parameters so that every item shows ``init`` (a photo name, path, array or
    tensor), on the one loop with an objective on the pixels alone (``lr`` None: the
    parameterization's own). Returns the mean absolute error."""
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
        device=str(model.device), labels=labels, seeds=seeds, config=replace(config, progress=False).to_dict(),
        fingerprint=config.fingerprint(model), **{k: v for k, v in extra.items() if v is not None},
    )


def _init_name(init) -> str | None:
    return init if isinstance(init, str) else (None if init is None else "an image given in Python")
