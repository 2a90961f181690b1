"""The feature-visualization loop: optimize images so that an objective goes up.

    result = render(model, objectives.channel("blocks.4.2", 7))
    result = render_units(model, ["blocks.4.2:7", "logits:tabby"], RenderConfig(steps=256))
    result.save("out/")

Each step: images from the parameterization -> one random affine warp per item -> the model,
run through ``capture`` up to the deepest layer the objective reads -> the objective -> Adam.
Items of a batch are independent (own seed for the initial image and for the transforms), so a
batched render equals the same units rendered one by one.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..capture import capture
from ..errors import NeuronscopeError
from ..images import contact_sheet, file_safe, save_png
from ..manifest import build_manifest, write_json
from ..models.fuse import fast_copy
from ..models.model import Model
from ..names import LOGITS
from ..overrides import REDIRECT_STEPS, frozen_weights, redirected_relu
from ..units import Unit, parse_unit
from . import objectives as obj
from .param import check_param, make_param
from .param.color import SQUASHES
from .transforms import RandomAffine, TransformConfig, preset

MIN_SIZE = 16
DEFAULT_LR = {"fourier": 0.05, "pixel": 0.05, "maco": 1.0}
"""Adam learning rates: Lucid's 0.05 for spectra and pixels; MaCo moves phases, which need ~1."""
DEFAULT_DIVERSITY_WEIGHT = 8.0
"""Diversity strength for channel objectives of EfficientNet-Lite (values of order 1-10): on
Lite0 the samples then differ clearly while each keeps about 70 % of the unit's activation."""


class RenderWarning(UserWarning):
    """Something about a render the user should know (a dead unit, a zero gradient)."""


@dataclass(frozen=True)
class RenderConfig:
    """How to render. Defaults give clear pictures on EfficientNet-Lite0 in a few seconds per unit."""

    steps: int = 256
    """Adam steps (Lucid uses 512; on Lite0 channel objectives settle well before 256)."""
    size: int = 128
    """Side of the optimized image in pixels (the model sees it after the transforms)."""
    lr: float | None = None
    """Adam learning rate; None: the parameterization's default (``DEFAULT_LR``)."""
    param: str = "fourier"
    """``fourier`` (decorrelated 1/f spectrum), ``pixel`` or ``maco`` (phase only)."""
    decorrelate: bool = True
    squash: str = "sigmoid"
    """``sigmoid`` or ``clip`` (for fourier and pixel)."""
    transforms: TransformConfig | str = "lucid"
    """A TransformConfig or a preset name: ``lucid`` (standard_transforms), ``article``, ``none``."""
    redirect_steps: int = REDIRECT_STEPS
    """Steps with the redirected ReLU/ReLU6 gradient at the start (0 to disable)."""
    seed: int = 0
    """Seed of item 0; item i of a batch uses seed + i."""
    snapshots: tuple[int, ...] = ()
    """Steps (1-based) at which to keep a copy of the images."""
    max_batch: int = 16
    """Most images optimized together (on a 2-core CPU, 8-16 is the sweet spot)."""
    memory_budget_mb: int = 3072
    """Activation memory a batch may use; ``render_units`` sizes its batches to fit."""
    fast: bool = True
    """Render with a copy of the model whose BatchNorms are folded into the convolutions, in
    channels-last memory: about 2x faster on a CPU, same outputs to float rounding."""
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise NeuronscopeError(f"steps must be a positive integer, got {self.steps!r}")
        if not isinstance(self.size, int) or self.size < MIN_SIZE:
            raise NeuronscopeError(f"size must be an integer of at least {MIN_SIZE} pixels, got {self.size!r}")
        if self.lr is not None and not self.lr > 0:
            raise NeuronscopeError(f"lr must be positive, got {self.lr!r}")
        check_param(self.param)
        if self.squash not in SQUASHES:
            raise NeuronscopeError(f"unknown squash '{self.squash}': choose one of {', '.join(SQUASHES)}")
        preset(self.transforms)
        if self.max_batch < 1 or self.memory_budget_mb < 1:
            raise NeuronscopeError("max_batch and memory_budget_mb must be positive")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.param]

    @property
    def transform_config(self) -> TransformConfig:
        return preset(self.transforms)


@dataclass
class Result:
    """Rendered images with everything needed to judge and reproduce them."""

    images: torch.Tensor
    """(N, C, H, W) in [0, 1], on the CPU."""
    labels: list[str]
    """What each image maximizes (a unit address or an objective's name)."""
    values: torch.Tensor
    """(N,) each item's objective on its final image, seen without transforms at ``size``."""
    history: torch.Tensor
    """(steps, N) each item's objective at every step (on the transformed images)."""
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    """``total_s`` and ``model_s`` (the model's forward + backward), in seconds."""
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def sheet(self, columns: int | None = None, title: str | None = None):
        """A contact sheet of the images with their labels (a PIL image)."""
        return contact_sheet(list(self.images), self.labels, columns=columns, title=title)

    def save(self, folder: str | Path) -> list[Path]:
        """Write one PNG per image and ``manifest.json`` into ``folder`` (atomically)."""
        folder = Path(folder)
        paths = [
            save_png(folder / f"{i:03d}_{file_safe(label)}.png", image)
            for i, (image, label) in enumerate(zip(self.images, self.labels))
        ]
        manifest = {**self.manifest, "files": [p.name for p in paths], "values": self.values.tolist(),
                    "timing": self.timing, "warnings": self.warnings}
        write_json(folder / "manifest.json", manifest)
        return paths


def render(model: Model, objective: obj.Objective, config: RenderConfig | None = None, *,
           batch: int = 1, seeds: Sequence[int] | None = None, labels: Sequence[str] | None = None) -> Result:
    """Optimize ``batch`` images to maximize ``objective`` (summed over the items).

    Item i starts from seed ``config.seed + i`` (or ``seeds[i]``).
    """
    config = config or RenderConfig()
    seeds = list(seeds) if seeds is not None else [config.seed + i for i in range(batch)]
    labels = list(labels) if labels is not None else [objective.name] * len(seeds)
    progress = _progress(config, config.steps, objective.name)
    try:
        result = _optimize(model, objective, config, seeds, labels, progress)
    finally:
        progress.close()
    result.manifest = _manifest(model, config, seeds, labels, objective.name)
    return result


def render_units(model: Model, units: Sequence[str | Unit], config: RenderConfig | None = None, *,
                 samples: int = 1, diversity: float = 0.0) -> Result:
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
    parsed = [u if isinstance(u, Unit) else parse_unit(u, model) for u in units]
    items = [(j, s) for j in range(len(parsed)) for s in range(samples)]
    order = sorted(range(len(parsed)), key=lambda j: _run_index(model, parsed[j].layer))
    chunk = _batch_size(model, parsed, config, samples)
    unit_chunks = [order[i : i + chunk // samples] for i in range(0, len(order), chunk // samples)]
    progress = _progress(config, config.steps * len(unit_chunks), f"{len(parsed)} units")
    results: dict[int, Result] = {}
    timing = {"total_s": 0.0, "model_s": 0.0}
    try:
        for unit_ids in unit_chunks:
            objective = _units_objective(model, [parsed[j] for j in unit_ids], samples, diversity)
            seeds = [config.seed + j * samples + s for j in unit_ids for s in range(samples)]
            labels = [describe(model, parsed[j]) for j in unit_ids for _ in range(samples)]
            part = _optimize(model, objective, config, seeds, labels, progress)
            timing = {k: timing[k] + part.timing[k] for k in timing}
            for position, j in enumerate(unit_ids):
                results[j] = _slice(part, position * samples, (position + 1) * samples)
    finally:
        progress.close()
    combined = _concat([results[j] for j in range(len(parsed))])
    combined.timing = timing
    seeds = [config.seed + j * samples + s for j, s in items]
    combined.manifest = _manifest(model, config, seeds, combined.labels, "units",
                                  samples=samples, diversity=diversity, batch_size=chunk)
    return combined


def render_layer(model: Model, layer: str, channels: Sequence[int] | None = None,
                 config: RenderConfig | None = None) -> Result:
    """Channel visualizations of a layer (default: all of its channels)."""
    info = model.layer(layer)
    chosen = list(range(info.channels)) if channels is None else list(channels)
    return render_units(model, [Unit(info.name, c) for c in chosen], config)


def describe(model: Model, unit: Unit) -> str:
    """A unit's address, with the class name for class units (``logits:281 tabby``)."""
    if unit.layer == LOGITS and unit.channel is not None and model.labels:
        return f"{unit} {model.labels[unit.channel]}"
    return str(unit)


def unit_objective(unit: Unit, batch: int | None = None) -> obj.Objective:
    """The natural objective of a unit: class logit, neuron, channel, or the whole layer."""
    if unit.layer == LOGITS:
        return obj.class_logit(unit.channel, batch=batch) if unit.channel is not None else obj.layer(LOGITS, batch)
    if unit.channel is None:
        return obj.layer(unit.layer, batch)
    if unit.position is not None:
        return obj.neuron(unit.layer, unit.channel, *unit.position, batch=batch)
    return obj.channel(unit.layer, unit.channel, batch=batch)


# --- the loop -------------------------------------------------------------------------------


def _optimize(model: Model, objective: obj.Objective, config: RenderConfig, seeds: list[int],
              labels: list[str], progress) -> Result:
    size = (config.size, config.size)
    memory_format = torch.contiguous_format
    if config.fast:
        model, memory_format = fast_copy(model, keep=objective.model_layers)
    image = make_param(config.param, size, seeds, model.input_channels, config.decorrelate, config.squash,
                       model.device, model.dtype)
    transform = RandomAffine(config.transform_config, seeds)
    optimizer = torch.optim.Adam(image.parameters(), lr=config.learning_rate)
    history, snapshots, notes = [], {}, []
    step_box = [0]
    model_seconds, start = 0.0, time.perf_counter()
    layers = objective.model_layers or (LOGITS,)
    with frozen_weights(model.module), redirected_relu(model.module, lambda: step_box[0] < config.redirect_steps), \
            capture(model, layers) as cap:
        for step in range(config.steps):
            step_box[0] = step
            optimizer.zero_grad(set_to_none=True)
            images = image()
            warped = transform(images)
            model_input = warped.detach().contiguous(memory_format=memory_format).requires_grad_(True)
            tick = time.perf_counter()
            acts = _run(cap, model_input, model, config, step)
            values = objective({**acts, obj.INPUT: images})
            # penalties on the image itself also backpropagate into the parameterization's graph,
            # which the second backward (through the warp) needs again
            (-values.sum()).backward(retain_graph=obj.INPUT in objective.layers)
            model_seconds += time.perf_counter() - tick
            if step == 0:
                notes += _check_start(model_input.grad, labels)
            warped.backward(model_input.grad)
            optimizer.step()
            history.append(values.detach().cpu())
            if step + 1 in config.snapshots:
                snapshots[step + 1] = images.detach().cpu()
            progress.update(1)
        final = image().detach()
        with torch.no_grad():
            final_values = objective({**_run(cap, final, model, config, 0), obj.INPUT: final}).cpu()
    return Result(final.cpu(), list(labels), final_values, torch.stack(history), snapshots,
                  timing={"total_s": time.perf_counter() - start, "model_s": model_seconds}, warnings=notes)


def _run(cap, x: torch.Tensor, model: Model, config: RenderConfig, step: int) -> dict[str, torch.Tensor]:
    """Run the model; on the first call, turn a failure inside the network into a clear error."""
    if step > 0:
        return cap(x)
    try:
        return cap(x)
    except NeuronscopeError:
        raise
    except RuntimeError as error:
        raise NeuronscopeError(
            f"{model.name} failed on a {tuple(x.shape[-2:])} input (image size {config.size}, with or without the transforms); "
            f"is it smaller than the model accepts? ({str(error).splitlines()[0]})"
        ) from error


def _check_start(grad: torch.Tensor | None, labels: list[str]) -> list[str]:
    """Warn about items whose objective has no gradient at the start (dead or saturated units)."""
    if grad is None:
        dead = list(range(len(labels)))
    else:
        dead = [i for i, norm in enumerate(grad.flatten(1).norm(dim=1).tolist()) if norm == 0]
    notes = []
    for i in dead:
        note = (f"{labels[i]}: the objective's gradient is zero at the start (a dead unit, or an activation "
                "saturated or cut off by ReLU6 for every input); its image will stay grey")
        warnings.warn(note, RenderWarning, stacklevel=3)
        notes.append(note)
    return notes


# --- batching -------------------------------------------------------------------------------


def _units_objective(model: Model, units: list[Unit], samples: int, diversity: float) -> obj.Objective:
    """One objective for a batch: item (k * samples + s) maximizes unit k; channels of one layer
    are vectorized into a single gather."""
    if all(u.channel is not None and u.position is None and u.layer != LOGITS for u in units) \
            and len({u.layer for u in units}) == 1:
        total = obj.channels(units[0].layer, [u.channel for u in units for _ in range(samples)])
    else:
        total = sum(unit_objective(u, batch=k * samples + s) for k, u in enumerate(units) for s in range(samples))
    if diversity > 0 and samples > 1:
        for k, unit in enumerate(units):
            group = range(k * samples, (k + 1) * samples)
            total = total - diversity * obj.diversity(diversity_layer(model, unit.layer), list(group))
    return total


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


def _run_index(model: Model, layer: str) -> int:
    return list(model._layer_table()).index(layer)


def _batch_size(model: Model, units: list[Unit], config: RenderConfig, samples: int) -> int:
    """Images per batch: what fits ``memory_budget_mb`` (an estimate from the layer table:
    the outputs of all leaf modules up to the deepest layer, kept for backward, plus gradients),
    capped by ``max_batch``, rounded down to whole units."""
    table = model._layer_table()
    deepest = max(_run_index(model, u.layer) for u in units)
    modules = dict(model.module.named_modules())
    names = list(table)[: deepest + 1]
    floats = sum(
        table[n].channels * (table[n].spatial[0] * table[n].spatial[1] if table[n].spatial else 1)
        for n in names if n in modules and not any(True for _ in modules[n].children())
    )
    side = config.transform_config.output_size((config.size, config.size))
    scale = (side[0] * side[1]) / (model.input_size[0] * model.input_size[1])
    per_image_mb = max(floats * scale * 4 * 3 / 2**20, 1e-3)
    fits = int(config.memory_budget_mb / per_image_mb)
    images = max(samples, min(config.max_batch, fits))
    return max(samples, images // samples * samples)


def _slice(result: Result, start: int, stop: int) -> Result:
    return Result(result.images[start:stop], result.labels[start:stop], result.values[start:stop],
                  result.history[:, start:stop], {k: v[start:stop] for k, v in result.snapshots.items()},
                  warnings=[w for w in result.warnings if any(w.startswith(l + ":") for l in result.labels[start:stop])])


def _concat(parts: list[Result]) -> Result:
    return Result(
        torch.cat([p.images for p in parts]),
        [label for p in parts for label in p.labels],
        torch.cat([p.values for p in parts]),
        torch.cat([p.history for p in parts], dim=1),
        {k: torch.cat([p.snapshots[k] for p in parts]) for k in parts[0].snapshots},
        warnings=list(dict.fromkeys(w for p in parts for w in p.warnings)),
    )


# --- bookkeeping ----------------------------------------------------------------------------


def _manifest(model: Model, config: RenderConfig, seeds: list[int], labels: list[str], objective: str, **extra) -> dict:
    return build_manifest(
        "render", model=model.name, input_size=model.input_size, device=str(model.device),
        objective=objective, units=labels, seeds=seeds, config=replace(config, progress=False), **extra,
    )


def _progress(config: RenderConfig, total: int, what: str):
    return tqdm(total=total, desc=f"render {what}"[:60], unit="step", disable=not config.progress, leave=False)
