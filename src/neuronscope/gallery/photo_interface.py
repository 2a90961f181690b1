"""The data of a photo page's interactive Building Blocks interface (``static/photo.js`` draws it).

For each gallery layer with a grid of at most ``HOVER_GRID`` positions a side: every position's
activation vector as its strongest units (a semantic dictionary; dictionary features too, where
the gallery has a feature layer) and that position's attribution to the photo's top classes; the
effect on the top classes of ablating each unit that appears there (precomputed: one batched
forward pass per layer). Neuron groups at two layers: each drawn as a feature visualization of its
direction, with its attribution to the top classes, the effect of removing it, and the
attribution between the groups of the two layers. Written as ``interactive.js`` beside the page's
pictures, so the page works opened as a plain file.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..attribution.groups import NeuronGroups, group_links, neuron_groups
from ..attribution.hidden import attribute, label_of
from ..featurevis import objectives
from ..featurevis.render import render
from ..images import save_png
from ..interventions import Ablate, LayerEdit, ScaleGroup, edited_logits
from ..manifest import atomic_write_bytes
from ..models.model import Model
from ..names import LOGITS
from ..readout import ImageReading
from ..units import Unit
from .config import THUMBNAIL_STEPS, GalleryConfig

HOVER_GRID = 28
"""Layers whose grid is at most this many positions a side can be explored position by position
(Lite0 at 224 px: blocks.2 and deeper); finer grids would make the page's data large."""
TOP_UNITS = 6
"""Units listed for a position (its strongest activations)."""
TOP_CLASSES = 3
"""Classes whose attribution and ablation effect the interface shows."""
GROUPS = 4
"""Neuron groups per layer."""
GROUP_PICTURE = 96
"""Side of a group's feature visualization."""
ABLATION_BATCH = 32
"""Edited copies of the photo per forward pass."""
DATA_FILE = "interactive.js"


def hover_layers(model: Model, layers: list[str]) -> list[str]:
    """The layers of ``layers`` that the interface explores: spatial, at most ``HOVER_GRID`` a side,
    each followed by the model's dictionary features of it (a derived layer), where it has them."""
    found = []
    for layer in layers:
        info = model.layer(layer)
        if info.spatial is None or max(info.spatial) > HOVER_GRID or layer in model.derived:
            continue
        found.append(layer)
        found += [name for name, derived in model.derived.items()
                  if derived.parent == layer and derived.kind.endswith("features") and name not in found]
    return found


def interface_data(model: Model, reading: ImageReading, layers: list[str], config: GalleryConfig,
                   folder: Path) -> dict[str, Any] | None:
    """Compute the interface's data for one photo (``reading``: its prepared input and logits),
    write ``interactive.js`` and the groups' pictures into ``folder``; returns what the page record
    keeps (None when no layer can be explored)."""
    shown = hover_layers(model, layers)
    if not shown or model.num_classes is None:
        return None
    x = reading.x
    probabilities = reading.activations[LOGITS][0].softmax(0)
    classes = [int(k) for k in probabilities.argsort(descending=True)[:TOP_CLASSES]]
    data: dict[str, Any] = {"classes": [{"index": k, "label": _label(model, k), "probability": _round(probabilities[k], 4)}
                                        for k in classes], "layers": []}
    gradients, seen = {}, ImageReading(x, {})
    for layer in shown:
        found = attribute(model, classes, x, layer)
        gradients[layer], seen.activations[layer] = found.gradients, found.activations[None]
        data["layers"].append(_layer_data(model, x, layer, found.activations, found.values, classes))
    data["groups"] = _groups_data(model, seen, shown, gradients, classes, config, folder)
    text = "window.neuronscopePhoto = " + json.dumps(data, separators=(",", ":")) + ";\n"
    atomic_write_bytes(folder / DATA_FILE, text.encode())
    return {"file": DATA_FILE, "layers": shown, "classes": [c["label"] for c in data["classes"]],
            "groups": [g["layer"] for g in data["groups"]["sets"]] if data["groups"] else []}


def _layer_data(model: Model, x: torch.Tensor, layer: str, activations: torch.Tensor, values: torch.Tensor,
                classes: list[int]) -> dict[str, Any]:
    channels, height, width = activations.shape
    k = min(TOP_UNITS, channels)
    strongest = activations.flatten(1).T.topk(k, dim=1)  # per position (row-major)
    units = sorted({int(c) for c in strongest.indices.flatten()})
    edits = [list(Ablate(f"{layer}:{c}").resolve(model)) for c in units]
    effects = _effects(model, x, edits, classes)
    return {
        "name": layer, "grid": [height, width], "channels": channels,
        "top": strongest.indices.tolist(), "values": np.round(strongest.values.numpy(), 3).tolist(),
        "attribution": np.round(values.sum(1).flatten(1).numpy(), 4).tolist(),  # (classes, positions)
        "ablation": {str(c): effect for c, effect in zip(units, effects)},
    }


def _groups_data(model: Model, seen: ImageReading, shown: list[str], gradients: dict[str, torch.Tensor],
                 classes: list[int], config: GalleryConfig, folder: Path) -> dict[str, Any] | None:
    """Neuron groups of the two deepest explored layers (one when only one is), drawn, attributed
    to the classes and linked to each other. ``seen``: the photo's activations at ``shown``."""
    grouped = [layer for layer in shown if layer not in model.derived and np.prod(model.layer(layer).spatial) >= GROUPS][-2:]
    if not grouped:
        return None
    sets = [neuron_groups(model, seen, layer, k=GROUPS) for layer in grouped]
    pictures = _draw_groups(model, sets, config)
    found = []
    for i, groups in enumerate(sets):
        shares = groups.attribution(gradients[groups.layer])  # (classes, k)
        effects = _effects(model, seen.x, [list(ScaleGroup(groups, g).resolve(model)) for g in range(groups.k)], classes)
        found.append({"layer": groups.layer, "items": [
            {"picture": save_png(folder / f"group_{i}_{g}.png", pictures[i * GROUPS + g]).name,
             "channels": [int(c) for c in np.argsort(-groups.directions[g])[:4]],
             "map": np.round(groups.maps[g] / max(float(groups.maps.max()), 1e-12), 3).flatten().tolist(),
             "attribution": np.round(shares[:, g], 4).tolist(), "ablation": effects[g]} for g in range(groups.k)]})
    links = group_links(model, sets[0], sets[1]).round(4).tolist() if len(sets) == 2 else None
    return {"sets": found, "links": links}


def _draw_groups(model: Model, sets: list[NeuronGroups], config: GalleryConfig) -> torch.Tensor:
    """Every group's direction feature-visualized, all sets in one batch."""
    objective, count = groups_objective(sets)
    settings = replace(config.render, size=GROUP_PICTURE, steps=min(THUMBNAIL_STEPS, config.render.steps), progress=False)
    return render(model, objective, settings, batch=count).images.detach().cpu()


def groups_objective(sets: list[NeuronGroups]) -> tuple[objectives.Objective, int]:
    """The objective of the group pictures: item i of the batch follows the i-th group's direction
    (sets one after another); with the number of items."""
    directions = [(groups.layer, torch.from_numpy(d).float()) for groups in sets for d in groups.directions]
    return sum(objectives.direction(layer, d, batch=i) for i, (layer, d) in enumerate(directions)), len(directions)


def _effects(model: Model, x: torch.Tensor, edits: list[list[LayerEdit]], classes: list[int]) -> list[list[float]]:
    """For each edit set, the change of each class's probability (after - before)."""
    probabilities = edited_logits(model, x, edits, ABLATION_BATCH).softmax(1)[:, classes]
    return (probabilities[1:] - probabilities[:1]).numpy().round(4).tolist()


def _label(model: Model, k: int) -> str:
    return label_of(model, Unit(LOGITS, k))


def _round(value: torch.Tensor, digits: int) -> float:
    return round(float(value), digits)
