"""`Result`: rendered images with their values, history, manifest and warnings; saving and sheets."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import NeuronscopeError
from ..images import SheetDisplay, contact_sheet, file_safe, save_png
from ..manifest import write_json
from ..units import Unit


@dataclass
class Result(SheetDisplay):
    """Rendered images with everything needed to judge and reproduce them."""

    images: torch.Tensor | list[torch.Tensor]
    """(N, C, H, W) in [0, 1], on the CPU; a list of (C, H, W) images where units of one render
    got different sizes (``RenderConfig.size`` None with classes and channels together)."""
    labels: list[str]
    """Captions: what each image maximizes (a unit with its class name, or an objective's name)."""
    values: torch.Tensor
    """(N,) each item's objective on its final image, seen without transforms at ``size``."""
    history: torch.Tensor
    """(steps, N) each item's objective at every step (on the transformed images)."""
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    """``total_s`` and ``model_s`` (the model's forward + backward), in seconds."""
    notes: dict[int, list[str]] = field(default_factory=dict)
    """Warnings per item (index into ``images``)."""
    units: list[Unit | None] = field(default_factory=list)
    """The unit each image renders (None for items of a free-form objective)."""
    interrupted: bool = False
    """Ctrl-C stopped the render early: the images are partial, and units not reached are missing."""
    alpha: torch.Tensor | list[torch.Tensor] | None = None
    """With ``RenderConfig(transparency=True)``: (N, 1, H, W) in [0, 1], where each image mattered
    to its objective over the optimization (MaCo's transparency map); ``save`` writes them."""

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        shown = ", ".join(self.labels[:3]) + (", ..." if len(self.labels) > 3 else "")
        extra = f", {len(self.warnings)} warnings" if self.notes else ""
        sizes = sorted({tuple(image.shape[-2:]) for image in self.images})
        return f"Result({len(self)} images {', '.join(map(str, sizes))}: {shown}{extra})"

    def preview(self):
        """The notebook picture: a sheet of at most 8 columns."""
        return self.sheet(columns=min(8, len(self)))

    @property
    def warnings(self) -> list[str]:
        """Every item's warnings, in item order."""
        return [note for i in sorted(self.notes) for note in self.notes[i]]

    def sheet(self, columns: int | None = None, title: str | None = None):
        """A contact sheet of the images with their labels (a PIL image)."""
        return contact_sheet(list(self.images), self.labels, columns=columns, title=title)

    def save(self, folder: str | Path) -> list[Path]:
        """Write one PNG per image and ``manifest.json`` into ``folder`` (atomically)."""
        folder = Path(folder)
        if folder.suffix.lower() == ".png":
            raise NeuronscopeError(f"'{folder}' looks like a .png file, but results are saved into a folder: give a folder")
        paths = [
            save_png(folder / f"{i:03d}_{file_safe(label)}.png", image)
            for i, (image, label) in enumerate(zip(self.images, self.labels))
        ]
        alphas = [] if self.alpha is None else [
            save_png(path.with_name(f"{path.stem}_alpha.png"), alpha.expand(3, -1, -1))
            for path, alpha in zip(paths, self.alpha)
        ]
        write_json(folder / "manifest.json", {**self.manifest, "files": [p.name for p in paths], "values": self.values.tolist(),
                                              "timing": self.timing, "warnings": self.warnings,
                                              **({"alpha_files": [p.name for p in alphas]} if alphas else {})})
        return paths


def slice_result(result: Result, start: int, stop: int) -> Result:
    return Result(result.images[start:stop], result.labels[start:stop], result.values[start:stop],
                  result.history[:, start:stop], {k: v[start:stop] for k, v in result.snapshots.items()},
                  notes={i - start: n for i, n in result.notes.items() if start <= i < stop},
                  units=result.units[start:stop], interrupted=result.interrupted,
                  alpha=None if result.alpha is None else result.alpha[start:stop])


def concat_results(parts: list[Result]) -> Result:
    notes, offset = {}, 0
    for part in parts:
        notes.update({offset + i: n for i, n in part.notes.items()})
        offset += len(part)
    return Result(
        _stack([p.images for p in parts]),
        [label for p in parts for label in p.labels],
        torch.cat([p.values for p in parts]),
        torch.cat([p.history for p in parts], dim=1),
        {k: _stack([p.snapshots[k] for p in parts]) for k in parts[0].snapshots},
        notes=notes, units=[u for p in parts for u in p.units],
        alpha=None if any(p.alpha is None for p in parts) else _stack([p.alpha for p in parts]),
    )


def _stack(batches: list) -> torch.Tensor | list[torch.Tensor]:
    """Batches of images as one (N, C, H, W) tensor, or as a list of (C, H, W) images where their
    sizes differ (units rendered each at its own size)."""
    if len({tuple(b.shape[1:]) for b in batches}) <= 1:
        return torch.cat(list(batches))
    return [image for batch in batches for image in batch]
