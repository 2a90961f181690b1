"""A layer's activation atlas in the gallery (``microscope --atlas``): made once per layer from
samples collected in the build's one pass over its image source, its icons rendered with the
gallery's steps."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..atlas import AtlasConfig, Samples, activation_atlas
from ..data.sources import ImageSource
from ..models.model import Model
from .config import GalleryConfig


def atlas_config(model: Model, config: GalleryConfig, source: ImageSource) -> AtlasConfig:
    """The gallery's atlases: its render steps and seed, a grid sized to the source, cells
    labelled by class where the model has classes."""
    return AtlasConfig(steps=config.render.steps, seed=config.render.seed,
                       grid=grid_for(len(source) * AtlasConfig.positions), attributions=model.num_classes is not None,
                       progress=False)


def atlas_view(model: Model, source: ImageSource, layer: str, config: GalleryConfig, folder: Path,
               samples: Samples) -> dict[str, Any]:
    """Save the atlas of ``layer`` from ``samples`` (collected in the build's pass) into ``folder``
    (canvas, icons, cell table, manifest) and return what the layer's atlas page shows."""
    atlas = activation_atlas(model, source, layer, atlas_config(model, config, source), samples=samples)
    atlas.save(folder)
    return {"folder": folder.name, "file": "atlas.png", "cells": atlas.cell_table(), "grid": atlas.cells.grid,
            "samples": atlas.kept_samples, "layout": atlas.layout, "icon": int(atlas.icons.shape[-1]),
            "dominance": round(atlas.diagonal_dominance(), 4)}


SAMPLES_PER_CELL = 40
"""The grid is sized so that a cell holds about this many samples on average (8 x 8 for the
bundled crops' 2640 samples, as the recipe's grids; 2 x 2 for a dozen images)."""


def grid_for(samples: int) -> int:
    return max(2, min(AtlasConfig.grid, round(math.sqrt(samples / SAMPLES_PER_CELL))))
