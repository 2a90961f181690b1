"""Neuron mechanics on the gallery's pages (``microscope --mechanics``): each unit's decomposed
feature visualization from the layer before it (expanded weights, Method A), rendered for a chunk
of units at once. (How polysemantic each unit's firing looks: ``circuits.polysemanticity``.)

Cost: a unit's window has W x W cells (9-25 on EfficientNet-Lite); each cell is a small picture
(``CELL_SIZE`` px) of a direction at a shallower layer than the unit, and cells carrying under
``FAINT`` of the unit's strongest cell are not rendered (the grid fades them to grey anyway).
Polysemanticity reads all of a layer's units from one shared forward pass over their top
examples. On Lite0's default build the two together take 0.82x the time of the units' own
feature visualizations (``benchmarks/mechanics.py``: 94.6 s against 114.8 s).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..circuits.decompose import previous_layer
from ..circuits.expanded import expanded_weights
from ..circuits.pictures import render_cells, tile_cells
from ..images import diverging, flat_cells, save_png
from ..models.model import Model
from .config import GalleryConfig

CELL_SIZE = 48
"""Side of one window cell's picture, in pixels (as ``neuronscope mechanics``)."""
FAINT = 0.25
"""Cells whose vector is shorter than this share of the unit's longest are shown as grey, not rendered
(the grid would show them at most a quarter strength)."""
CELL_SEEDS = 1000
"""Cell i of unit c uses seed ``render.seed + c * CELL_SEEDS + i``: the same whichever units are pending."""


def decomposition_views(model: Model, layer: str, channels: list[int], config: GalleryConfig,
                        folder: Path) -> dict[int, dict[str, Any]]:
    """Write each unit's decomposition (``<folder>/<c>/decomposition.png``: the window's cells faded
    by their weight, and the weights' magnitudes) and return what its page lists, by channel."""
    source = previous_layer(model, layer)
    weights = expanded_weights(model, layer, source).weights  # (W, W, C1, all channels of layer)
    window = weights.shape[0]
    vectors = {c: weights[..., c].reshape(window * window, -1) for c in channels}
    kept = {c: _strong(v) for c, v in vectors.items()}
    pictures = _render(model, source, vectors, kept, config)
    records = {}
    for c in channels:
        magnitudes = vectors[c].norm(dim=1).view(window, window)
        cells = torch.full((window * window, 3, CELL_SIZE, CELL_SIZE), 0.9)
        for index, picture in zip(kept[c], pictures[c]):
            cells[index] = picture
        grid = tile_cells(cells, magnitudes)
        files = {"file": save_png(folder / str(c) / "decomposition.png", grid).name,
                 "magnitudes": save_png(folder / str(c) / "decomposition_weights.png",
                                        flat_cells(diverging(magnitudes, None), grid.shape[-1])).name}
        records[c] = {"from": source, "window": window, **files, "rendered": len(kept[c]), "cells": window * window}
    return records


def _strong(vectors: torch.Tensor) -> list[int]:
    """Indices of the cells worth a picture: at least ``FAINT`` of the longest vector."""
    norms = vectors.norm(dim=1)
    return [int(i) for i in torch.nonzero(norms >= FAINT * norms.max().clamp(min=1e-12))[:, 0]]


def _render(model: Model, source: str, vectors: dict[int, torch.Tensor], kept: dict[int, list[int]],
            config: GalleryConfig) -> dict[int, torch.Tensor]:
    """Every kept cell of every unit in one batch, each from its own seed."""
    items = [(c, i) for c in vectors for i in kept[c]]
    render = replace(config.render, size=CELL_SIZE, progress=False)
    seeds = [config.render.seed + c * CELL_SEEDS + i for c, i in items]
    stacked = torch.stack([vectors[c][i] for c, i in items])
    images, _ = render_cells(model, stacked, source, render, seeds=seeds)
    found, start = {}, 0
    for c in vectors:
        found[c] = images[start : start + len(kept[c])]
        start += len(kept[c])
    return found
