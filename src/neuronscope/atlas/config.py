"""`AtlasConfig`: how an atlas is made, with the recipe's defaults measured on Lite0."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import NeuronscopeError
from .layout import LAYOUTS

THRESHOLD, CLASS_THRESHOLD = 5, 4
"""Cells need more members than this (the recipe's > 5; > 4 for class atlases)."""


@dataclass(frozen=True)
class AtlasConfig:
    """How to make an atlas. Defaults: the bundled crops' 330 images x 8 positions = 2640
    samples, which fill about 45 cells of an 8 x 8 grid with more than 5 members each."""

    positions: int = 8
    """Random interior positions sampled per image (the recipe takes 1 of each of 1M images; a
    small source needs more, and positions of one image are kept distinct)."""
    grid: int = 8
    """Cells per side of the grid over the layout."""
    threshold: int | None = None
    """Members a cell must exceed to be drawn; None: 5 (4 for a class atlas)."""
    layout: str = "auto"
    """``auto`` (t-SNE), ``tsne``, ``umap`` (needs umap-learn: the extra ``atlas``) or ``pca``."""
    whiten: bool = False
    """Optimize the whitened direction ``S v`` (Lucid's atlas) and judge icons by the whitened
    cosine, instead of ``v`` and the plain cosine."""
    cosine_power: float = 2.0
    """n in the icon objective ``dot x max(0.1, cos)^n`` (the recipe's 2)."""
    icon: int = 80
    """Icon side in pixels (the notebooks' 80; the recipe's 96)."""
    steps: int = 128
    """Adam steps per icon (the recipe's default 128)."""
    attempts: int = 1
    """Renders per cell with other seeds; the highest final objective is kept."""
    class_samples: int = 500
    """Class atlas: the magnitude filter's top samples by attribution to the class."""
    attributions: bool = True
    """Collect each sample's class attribution (labels the cells; a class atlas needs it)."""
    seed: int = 0
    """Seeds the sampled positions, the layout and the icons (cell i: seed + i)."""
    batch: int = 16
    """Images per forward pass while collecting."""
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("positions", "grid", "icon", "steps", "attempts", "class_samples", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise NeuronscopeError(f"{name} must be a positive integer, got {value!r}")
        if self.threshold is not None and (not isinstance(self.threshold, int) or self.threshold < 0):
            raise NeuronscopeError(f"threshold must be a non-negative integer, got {self.threshold!r}")
        if self.layout not in LAYOUTS:
            raise NeuronscopeError(f"unknown layout '{self.layout}': choose one of {', '.join(LAYOUTS)}")
        if self.cosine_power < 0:
            raise NeuronscopeError(f"cosine_power must be >= 0, got {self.cosine_power!r}")

    def cell_threshold(self, class_atlas: bool) -> int:
        if self.threshold is not None:
            return self.threshold
        return CLASS_THRESHOLD if class_atlas else THRESHOLD
