"""`Atlas`: an atlas's cells and icons, its canvas, and saving (canvas PNG, icons, cell table)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..images import SheetDisplay, default_font, fit_text, save_png, to_pil
from ..manifest import write_json
from .config import AtlasConfig
from .layout import Cells

TOP_CLASSES = 3
"""Classes listed per cell in the cell table."""


@dataclass
class Atlas(SheetDisplay):
    """An activation atlas (or a class activation atlas) of one layer."""

    model: str
    layer: str
    target: int | None
    """The class of a class atlas (None: all samples)."""
    target_label: str | None
    config: AtlasConfig
    layout: str
    """The layout method that ran (``tsne``, ``umap`` or ``pca``)."""
    unit_xy: np.ndarray
    """(N, 2) every kept sample's normalized layout position in [0, 1]^2 (y up)."""
    cells: Cells
    icons: torch.Tensor
    """(cells, 3, S, S) in [0, 1]: icon i visualizes ``cells.directions[i]``."""
    values: torch.Tensor
    """(cells,) each icon's final objective."""
    seeds: list[int]
    similarity: torch.Tensor
    """(cells, cells): cosine (whitened when ``config.whiten``) between icon i's activation at the
    layer's centre, on the icon as rendered, and cell j's direction."""
    class_names: tuple[str, ...] | None
    samples: int
    """Samples collected."""
    kept_samples: int
    """Samples laid out (all of them, or those a class atlas keeps)."""
    timing: dict[str, float] = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cells)

    def __repr__(self) -> str:
        what = f"class atlas of '{self.target_label}'" if self.target is not None else "atlas"
        return (f"Atlas({what}, {self.model} {self.layer}: {len(self)} cells of a {self.cells.grid}x{self.cells.grid} "
                f"grid from {self.kept_samples} samples, {self.layout})")

    @property
    def labels(self) -> list[str | None]:
        """Each cell's label: the class its mean attribution supports most (None without attributions)."""
        if self.cells.attributions is None:
            return [None] * len(self)
        names = self.class_names or tuple(str(i) for i in range(self.cells.attributions.shape[1]))
        return [names[int(i)] for i in self.cells.attributions.argmax(1)]

    def own_rank(self) -> torch.Tensor:
        """(cells,) how many other cells' directions icon i resembles more than its own (0: its own first)."""
        own = self.similarity.diagonal()
        return (self.similarity > own[:, None]).sum(1)

    def diagonal_dominance(self) -> float:
        """Fraction of icons closer to their own cell's direction than to any other cell's."""
        return float((self.own_rank() == 0).float().mean()) if len(self) else 0.0

    def cell_table(self) -> list[dict[str, Any]]:
        """One row per cell: grid position (y up), count, label and top classes with their mean
        attribution, the icon's objective, seed and similarity to its own direction, its icon file."""
        rows, ranks, labels = [], self.own_rank(), self.labels
        for i, (x, y) in enumerate(self.cells.xy.tolist()):
            row = {"cell": i, "x": x, "y": y, "count": int(self.cells.counts[i]), "label": labels[i],
                   "objective": float(self.values[i]), "seed": self.seeds[i],
                   "own_similarity": float(self.similarity[i, i]), "own_rank": int(ranks[i]), "icon": icon_name(x, y)}
            if self.cells.attributions is not None:
                top = self.cells.attributions[i].topk(min(TOP_CLASSES, self.cells.attributions.shape[1]))
                names = self.class_names or ()
                row["top_classes"] = [[names[int(k)] if names else str(int(k)), float(v)]
                                      for v, k in zip(top.values, top.indices)]
            rows.append(row)
        return rows

    def canvas(self, labels: bool = True, scale_by_count: bool = False, cell: int | None = None) -> Image.Image:
        """Icons at their cell positions on white, y up; ``labels``: each cell's class under its
        icon; ``scale_by_count``: icon side in proportion to sqrt(count / the largest count)."""
        side = cell or int(self.icons.shape[-1])
        grid = self.cells.grid
        picture = Image.new("RGB", (grid * side, grid * side), "white")
        draw = ImageDraw.Draw(picture)
        font = default_font(max(9, side // 9))
        largest = max(int(self.cells.counts.max()), 1) if len(self) else 1
        for i, (x, y) in enumerate(self.cells.xy.tolist()):
            fraction = float(np.sqrt(self.cells.counts[i] / largest)) if scale_by_count else 1.0
            size = max(4, round(side * max(fraction, 0.3)))
            left, top = x * side + (side - size) // 2, (grid - 1 - y) * side + (side - size) // 2
            picture.paste(to_pil(self.icons[i]).resize((size, size), Image.Resampling.LANCZOS), (left, top))
            label = self.labels[i]
            if labels and label:
                text = fit_text(draw, label, font, side - 4)
                height = font.size + 3
                bottom = (grid - y) * side
                draw.rectangle([x * side, bottom - height, (x + 1) * side - 1, bottom - 1], fill="white")
                draw.text((x * side + 2, bottom - height + 1), text, fill="black", font=font)
        return picture

    def sheet(self) -> Image.Image:
        """The labelled canvas under a title line."""
        picture = self.canvas()
        font = default_font(max(12, picture.width // 60))
        title = f"{self.model} {self.layer}: " + (f"class activation atlas of '{self.target_label}'"
                                                 if self.target is not None else "activation atlas")
        title += f" ({len(self)} cells, {self.kept_samples} samples, {self.layout})"
        head = font.size + 12
        sheet = Image.new("RGB", (picture.width, picture.height + head), "white")
        draw = ImageDraw.Draw(sheet)
        draw.text((6, 6), fit_text(draw, title, font, picture.width - 12), fill="black", font=font)
        sheet.paste(picture, (0, head))
        return sheet

    def save(self, folder: str | Path) -> Path:
        """Write ``atlas.png`` (the labelled canvas), ``atlas_plain.png`` (no labels),
        ``icons/cell_X_Y.png``, ``cells.json`` and ``manifest.json`` into ``folder``."""
        folder = Path(folder)
        for i, (x, y) in enumerate(self.cells.xy.tolist()):
            save_png(folder / icon_name(x, y), self.icons[i])
        save_png(folder / "atlas.png", self.canvas())
        save_png(folder / "atlas_plain.png", self.canvas(labels=False))
        write_json(folder / "cells.json", self.cell_table())
        write_json(folder / "manifest.json", self.manifest)
        return folder


def icon_name(x: int, y: int) -> str:
    """The icon file of cell (x, y) inside a saved atlas folder."""
    return f"icons/cell_{x}_{y}.png"
