"""Neuron mechanics on the gallery's pages (``microscope --mechanics``): each unit's decomposed
feature visualization from the layer before it (expanded weights, Method A), rendered for a chunk
of units at once, and how polysemantic each unit's firing looks.

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

import numpy as np
import torch

from ..circuits.cases import contributions_to_channels
from ..circuits.decompose import previous_layer
from ..circuits.expanded import expanded_weights
from ..circuits.pictures import render_cells, tile_cells
from ..data.sources import ImageSource
from ..examples.topk import LayerExamples
from ..factorization import ChannelReducer
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
CASE_IMAGES = 64
"""Most images (the layer's units' top dataset examples) whose contributions measure polysemanticity."""


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


def polysemanticity(model: Model, layer: str, channels: list[int], examples: LayerExamples,
                    source: ImageSource, seed: int = 0) -> dict[int, float]:
    """For each channel, how much a second firing case explains beyond one: ``(e1 - e2) / e1``, with
    ``e_k`` the relative error of k NMF cases (``circuits.firing_cases``) of its contribution
    vectors from the layer before, over the top dataset examples of the layer's ``channels``
    (0: one pattern explains its firing as well as two; towards 1: two distinct cases)."""
    keys = list(dict.fromkeys(e.key for c in channels for e in examples.top(c)))[:CASE_IMAGES]
    x = torch.cat([model.input(source.load(key)) for key in keys])
    earlier = previous_layer(model, layer)
    gains = {}
    for c, samples in zip(channels, contributions_to_channels(model, layer, channels, x, earlier)):
        e1, e2 = (_nmf_error(samples, k, seed) for k in (1, 2))
        gains[c] = round(float((e1 - e2) / e1), 4) if e1 > 0 else 0.0
    return gains


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


def _nmf_error(samples: torch.Tensor, k: int, seed: int) -> float:
    reducer = ChannelReducer(k, "NMF", negatives="split", seed=seed)
    reducer.fit_transform(samples)
    return float(np.nan_to_num(reducer.reconstruction_error(samples)))
