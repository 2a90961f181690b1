"""The caricature loop: reference and caricatures in one batch under one shared transform per step."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...capture import capture
from ...errors import NeuronscopeError
from ...images import contact_sheet, file_safe, save_png
from ...manifest import build_manifest, write_json
from ...models.fuse import fast_copy
from ...models.model import Model
from ...overrides import frozen_weights
from ..param import check_param, make_param
from ..transforms import RandomAffine, TransformConfig, preset

COSINE_MODES = ("true", "lucid")
COSINE_FLOOR = 0.1
EPS = 1e-6

Direction = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""From the captured activations of a step (item 0 = the reference), the direction to follow."""


@dataclass(frozen=True)
class CaricatureConfig:
    """How to make caricatures (defaults: Lucid's recipe at the model's input size, 256 steps)."""

    steps: int = 256
    size: int | tuple[int, int] | None = None
    """(height, width) or side of the images; None: the model's input size."""
    cosine_power: float = 1.0
    """p in ``dot * max(0.1, cos)^p``: 0 is the most extreme, larger stays closer to the original."""
    cosine: str = "true"
    """``true`` cosine, or ``lucid``: Lucid's ``dot / |a|`` (= |a0| cos), same optimum, other scale."""
    lr: float = 0.05
    param: str = "fourier"
    transforms: TransformConfig | str = "lucid"
    seed: int = 0
    fast: bool = True
    """Fold BatchNorm into convolutions for the optimization (see ``models.fuse``)."""
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise NeuronscopeError(f"steps must be a positive integer, got {self.steps!r}")
        if not 0 <= self.cosine_power <= 8:
            raise NeuronscopeError(f"cosine power p must be in 0..8, got {self.cosine_power!r}")
        if self.cosine not in COSINE_MODES:
            raise NeuronscopeError(f"unknown cosine mode '{self.cosine}': choose one of {', '.join(COSINE_MODES)}")
        check_param(self.param)
        preset(self.transforms)
        if not self.lr > 0:
            raise NeuronscopeError(f"lr must be positive, got {self.lr!r}")

    @property
    def transform_config(self) -> TransformConfig:
        return preset(self.transforms)


@dataclass
class Caricatures:
    """A reference image and its caricatures, with what is needed to judge and reproduce them."""

    reference: torch.Tensor
    """(C, H, W) the prepared input in [0, 1]."""
    images: torch.Tensor
    """(N, C, H, W) one caricature per target."""
    layers: list[str]
    labels: list[str]
    similarity: torch.Tensor
    """(N,) cosine between the caricature's and the reference's activations at its layer (no transforms)."""
    values: torch.Tensor
    """(N,) the objective on the final images (no transforms)."""
    history: torch.Tensor
    manifest: dict = field(default_factory=dict)

    def sheet(self, title: str | None = None, columns: int | None = None):
        """The input beside its caricatures, captions under each (a PIL image)."""
        images = [self.reference, *self.images]
        captions = ["input", *self.labels]
        return contact_sheet(images, captions, columns=columns or len(images), title=title)

    def save(self, folder: str | Path) -> list[Path]:
        """Write input.png, one PNG per caricature, sheet.png and manifest.json (atomically)."""
        folder = Path(folder)
        paths = [save_png(folder / "input.png", self.reference)]
        paths += [save_png(folder / f"{i:02d}_{file_safe(label)}.png", image) for i, (image, label) in
                  enumerate(zip(self.images, self.labels))]
        paths.append(save_png(folder / "sheet.png", self.sheet()))
        write_json(folder / "manifest.json", {**self.manifest, "files": [p.name for p in paths],
                                              "similarity": self.similarity.tolist(), "values": self.values.tolist()})
        return paths


def caricature(model: Model, image: str | np.ndarray, layers: Sequence[str],
               config: CaricatureConfig | None = None) -> Caricatures:
    """One caricature per layer of ``image`` (a path, bundled photo name or RGB array),
    all optimized together in one batch with the reference."""
    config = config or CaricatureConfig()
    names = [model.layer(layer).name for layer in _nonempty(layers, "layers")]
    directions = [_reference_activations(name) for name in names]
    return _run(model, image, names, directions, names, config, "caricature", config.cosine_power)


def _reference_activations(layer: str) -> Direction:
    return lambda acts: acts[layer][0].detach()



# --- the loop -------------------------------------------------------------------------------


def _run(model: Model, image: str | np.ndarray, layers: list[str], directions: list[Direction], labels: list[str],
         config: CaricatureConfig, kind: str, power: float, extra: dict | None = None) -> Caricatures:
    size = _size(model, config.size)
    reference = model.input(image, size, crop_fraction=1.0)
    seeds = [config.seed + i for i in range(len(layers))]
    start = time.perf_counter()
    images, history = _optimize(model, reference, layers, directions, config, power, seeds)
    values, similarity = _evaluate(model, reference, images, layers, directions, config, power)
    manifest = build_manifest(
        kind, model=model.name, layers=layers, labels=labels, size=size, seeds=seeds,
        config=replace(config, progress=False), seconds=time.perf_counter() - start, **(extra or {}),
    )
    return Caricatures(reference[0].cpu(), images.cpu(), layers, labels, similarity, values, history, manifest)


def _optimize(model: Model, reference: torch.Tensor, layers: list[str], directions: list[Direction],
              config: CaricatureConfig, power: float, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    needed = _needed_layers(layers, directions)
    fast, memory_format = fast_copy(model, keep=needed) if config.fast else (model, torch.contiguous_format)
    param = make_param(config.param, tuple(reference.shape[-2:]), seeds, model.input_channels,
                       device=model.device, dtype=model.dtype)
    transform = RandomAffine(config.transform_config, [config.seed] * (len(layers) + 1), shared=True)
    optimizer = torch.optim.Adam(param.parameters(), lr=config.lr)
    history = []
    progress = tqdm(total=config.steps, desc="caricature", unit="step", disable=not config.progress, leave=False)
    try:
        with frozen_weights(fast.module), capture(fast, needed) as cap:
            for _ in range(config.steps):
                optimizer.zero_grad(set_to_none=True)
                warped = transform(torch.cat([reference, param()]))
                model_input = warped.detach().contiguous(memory_format=memory_format).requires_grad_(True)
                acts = cap(model_input)
                values = _values(acts, layers, directions, config.cosine, power)
                (-values.sum()).backward()
                warped.backward(model_input.grad)
                optimizer.step()
                history.append(values.detach().cpu())
                progress.update(1)
    finally:
        progress.close()
    return param().detach(), torch.stack(history)


def _values(acts: dict[str, torch.Tensor], layers: list[str], directions: list[Direction], mode: str,
            power: float, offset: int = 1) -> torch.Tensor:
    """Objective of caricature i (batch item offset + i) against its direction."""
    values = []
    for i, (layer, direction) in enumerate(zip(layers, directions)):
        target = direction(acts)
        values.append(caricature_objective(acts[layer][offset + i], target, power, mode))
    return torch.stack(values)


def caricature_objective(a: torch.Tensor, a0: torch.Tensor, power: float = 1.0, mode: str = "true") -> torch.Tensor:
    """``<a, a0> * max(0.1, cos(a, a0))^p`` over all channels and positions at once.

    ``mode="lucid"`` uses Lucid's ``<a, a0> / |a|`` in place of the cosine.
    """
    dot = (a * a0).sum()
    if power == 0:
        return dot
    if mode == "lucid":
        similarity = dot / (EPS + a.norm())
    else:
        similarity = dot / (EPS + a.norm() * a0.norm())
    return dot * similarity.clamp(min=COSINE_FLOOR) ** power


def _evaluate(model: Model, reference: torch.Tensor, images: torch.Tensor, layers: list[str],
              directions: list[Direction], config: CaricatureConfig, power: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Objective and cosine to the reference of every caricature, without transforms."""
    needed = _needed_layers(layers, directions)
    batch = torch.cat([reference, images]).requires_grad_(True)  # attribution directions need a graph
    with capture(model, needed) as cap:
        acts = cap(batch)
        values = _values(acts, layers, directions, config.cosine, power).detach().cpu()
        similarity = torch.stack([
            F.cosine_similarity(acts[layer][1 + i].flatten(), acts[layer][0].flatten(), dim=0)
            for i, layer in enumerate(layers)
        ]).detach().cpu()
    return values, similarity


def _needed_layers(layers: list[str], directions: list[Direction]) -> list[str]:
    needed = list(dict.fromkeys(layers))
    for direction in directions:
        needed += [n for n in getattr(direction, "needs", ()) if n not in needed]
    return needed


def _size(model: Model, size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        return model.input_size
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if min(pair) < 16:
        raise NeuronscopeError(f"size must be at least 16 pixels, got {size!r}")
    return (int(pair[0]), int(pair[1]))


def _nonempty(values: Sequence, what: str) -> list:
    values = list(values)
    if not values:
        raise NeuronscopeError(f"no {what} given")
    return values




