"""The caricature loop: reference and caricatures in one batch under one shared transform per step."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...capture import capture
from ...errors import NeuronscopeError
from ...images import SheetDisplay, contact_sheet, file_safe, save_png
from ...manifest import build_manifest, write_json
from ...models.digest import weights_digest
from ...models.model import Model
from .. import objectives as obj
from ..callbacks import advancing
from ..loop import LoopConfig, optimize, progress_bar
from ..param import ParamFactory, check_param, make_param

COSINE_MODES = ("true", "lucid")

Direction = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""From the captured activations of a step (item 0 = the reference), the direction to follow."""


@dataclass(frozen=True)
class CaricatureConfig(LoopConfig):
    """How to make caricatures: the loop's settings (steps, lr, transforms, optimizer, views, ...:
    see `LoopConfig`) and the caricature's. Defaults: Lucid's recipe at the model's input size,
    256 steps."""

    shared_transforms: bool = True
    """Always on for caricatures: the reference and its caricatures get the same random draw at
    every step, so the reference's activations stay aligned with theirs position by position."""
    size: int | tuple[int, int] | None = None
    """(height, width) or side of the images; None: the model's input size."""
    cosine_power: float = 1.0
    """p in ``dot * max(0.1, cos)^p``: 0 is the most extreme, larger stays closer to the original."""
    cosine: str = "true"
    """``true`` cosine, or ``lucid``: Lucid's ``dot / |a|`` (= |a0| cos), same optimum, other scale."""
    param: str | ParamFactory = "fourier"
    """``fourier``, ``pixel`` or ``maco``, or a factory ``(size, seeds, channels, device=, dtype=) -> ImageParam``."""
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.shared_transforms:
            raise NeuronscopeError("caricatures need shared transforms (the reference and its caricatures are "
                                   "transformed alike at every step); leave shared_transforms on")
        if self.snapshots or self.transparency:
            raise NeuronscopeError("caricatures keep no snapshots or transparency map; leave them unset")
        if not 0 <= self.cosine_power <= 8:
            raise NeuronscopeError(f"cosine power p must be in 0..8, got {self.cosine_power!r}")
        if self.cosine not in COSINE_MODES:
            raise NeuronscopeError(f"unknown cosine mode '{self.cosine}': choose one of {', '.join(COSINE_MODES)}")
        check_param(self.param)


@dataclass
class Caricatures(SheetDisplay):
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

    def __repr__(self) -> str:
        shown = ", ".join(f"{label} (cos {float(c):.2f})" for label, c in zip(self.labels[:3], self.similarity))
        return f"Caricatures({len(self.images)} of a {tuple(self.reference.shape[-2:])} image: {shown}{', ...' if len(self.labels) > 3 else ''})"

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
    return _run(model, image, names, directions, names, config, "caricature")


def _reference_activations(layer: str) -> Direction:
    return lambda acts: acts[layer][0].detach()



# --- on the one loop -------------------------------------------------------------------------


def _run(model: Model, image: str | np.ndarray, layers: list[str], directions: list[Direction], labels: list[str],
         config: CaricatureConfig, kind: str, extra: dict | None = None) -> Caricatures:
    size = _size(model, config.size)
    reference = model.input(image, size, crop_fraction=1.0)
    seeds = [config.seed + i for i in range(len(layers))]
    param = make_param(config.param, size, seeds, model.input_channels, device=model.device, dtype=model.dtype)
    objective = reference_objective(layers, directions, config.cosine, config.cosine_power)
    progress = progress_bar(config.steps, "caricature", config.progress)
    try:
        run = optimize(model, objective, param, config, labels=labels, seeds=[config.seed], fixed=reference,
                       callbacks=[advancing(progress)])
    finally:
        progress.close()
    similarity = _similarity(model, reference, run.images, layers)
    manifest = build_manifest(
        kind, model=model, weights=weights_digest(model), image=image if isinstance(image, str) else None,
        layers=layers, labels=labels, size=size, seeds=seeds, config=replace(config, progress=False).to_dict(),
        seconds=run.timing["total_s"], warnings=[n for i in sorted(run.notes) for n in run.notes[i]], **(extra or {}),
    )
    return Caricatures(reference[0].cpu(), run.images, layers, labels, similarity, run.values, run.history, manifest)


def reference_objective(layers: list[str], directions: list[Direction], mode: str = "true",
                        power: float = 1.0) -> obj.Objective:
    """The objective of a batch [reference, caricature 0, caricature 1, ...]: caricature i maximizes
    ``caricature_objective`` of its activations at ``layers[i]`` against ``directions[i]``, which
    reads the reference's activations of the same step (item 0)."""
    needed = _needed_layers(layers, directions)
    graph = any(getattr(d, "needs", ()) for d in directions)
    return obj.Objective(lambda acts: _values(acts, layers, directions, mode, power), tuple(needed),
                         f"caricature at {', '.join(dict.fromkeys(layers))}", needs_graph=graph)


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

    ``mode="lucid"`` uses Lucid's ``<a, a0> / |a|`` in place of the cosine. The cosine is the
    one of ``objectives.direction`` (``objectives.dot_cosine``).
    """
    dot = (a * a0).sum()
    if mode == "lucid":
        if power == 0:
            return dot
        return dot * (dot / (obj.EPS + a.norm())).clamp(min=obj.COSINE_FLOOR) ** power
    return obj.dot_cosine(dot, a.norm(), a0.norm(), power)


def _similarity(model: Model, reference: torch.Tensor, images: torch.Tensor, layers: list[str]) -> torch.Tensor:
    """Cosine between each caricature's and the reference's activations at its layer, without transforms."""
    batch = torch.cat([reference, images.to(reference)])
    with torch.no_grad(), capture(model, list(dict.fromkeys(layers))) as cap:
        acts = cap(batch)
    return torch.stack([
        F.cosine_similarity(acts[layer][1 + i].flatten(), acts[layer][0].flatten(), dim=0)
        for i, layer in enumerate(layers)
    ]).cpu()


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




