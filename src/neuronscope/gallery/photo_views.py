"""The views of a photo's page: what the model says, caricatures through the gallery's layers,
where the evidence for its top classes lies, neuron groups and a semantic dictionary."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..attribution.dictionary import (
    channel_icons,
    dictionary_channels,
    semantic_dictionary,
)
from ..attribution.factor import class_factors
from ..attribution.groups import neuron_groups
from ..attribution.hidden import attribute_all_classes, default_layer
from ..errors import NeuronscopeError
from ..featurevis.caricature import CaricatureConfig, Caricatures, caricature
from ..images import factor_colors, heat_overlay, save_png
from ..models.model import Model
from ..names import LOGITS
from ..predict import top_classes
from ..readout import ImageReading, read_image
from .config import THUMBNAIL_STEPS, GalleryConfig
from .photo_interface import interface_data

GROUPS = 4
"""Neuron groups per photo."""
CARICATURE_BATCH = 3
"""Caricatures optimized together, shallow to deep (with the photo, 4 images a batch): a batch
stops after its deepest layer, so the shallow ones do not run through the whole network. On
Lite0's 6 gallery layers at 224 px on a 2-core CPU, two batches of 3 take 256 ms a step, one
batch of 6 takes 336 ms."""
SHARED_CLASSES = 2
"""When the two parts of the class-attribution factorization share this many of their top 4
classes, they do not tell classes apart (chelsea's both read "Egyptian cat, tiger cat, tabby,
lynx"), and the page shows the top classes' own maps instead."""
CLASS_MAPS = 3
"""Classes whose attribution map replaces such a factorization."""
ICON_SIZE = 64
"""Side of the semantic dictionary's channel icons (rendered like the units, at most ``THUMBNAIL_STEPS``,
cached across photos)."""


def photo_views(model: Model, image: np.ndarray, reading: ImageReading | None, layers: list[str], config: GalleryConfig,
                folder: Path, icon_cache: Path) -> dict[str, Any]:
    """Write a photo's pictures into ``folder`` and return what its page lists. ``layers`` are all
    the gallery's layers, shallow to deep: a page made for fewer is made again. ``reading``: the
    photo's ``read_photo`` (one forward pass for the predictions, groups and dictionary)."""
    reading = reading or read_photo(model, image, layers)
    record: dict[str, Any] = {"layers": list(layers), "predictions": [
        {"label": p.label, "probability": p.probability} for p in top_classes(model, reading.activations[LOGITS], top=5)[0]]}

    cartoons = _caricatures(model, image, layers, config.caricature_steps)
    save_png(folder / "input.png", cartoons.reference)
    record["caricatures"] = [
        {"layer": layer, "file": save_png(folder / f"caricature_{i}.png", picture).name, "similarity": float(sim)}
        for i, (layer, picture, sim) in enumerate(zip(cartoons.layers, cartoons.images, cartoons.similarity))]

    record["factors"] = _class_factors(model, image, cartoons.reference, folder)

    deepest = dictionary_layer(model, layers)
    if deepest is None:  # no layer with enough positions for groups and a dictionary
        record["groups"] = record["dictionary"] = None
        record["interactive"] = interface_data(model, reading, layers, config, folder)
        return record
    groups = neuron_groups(model, reading, deepest, k=GROUPS)
    record["groups"] = {"layer": deepest, "file": save_png(folder / "groups.png", groups.overlay()).name,
                        "colors": [_hex(c) for c in groups.colors()],
                        "channels": [[int(c) for c in np.argsort(-d)[:4]] for d in groups.directions]}

    dictionary = semantic_dictionary(model, reading, deepest, top=1, config=_icon_config(config), cache=icon_cache)
    channels = sorted({int(c) for c in dictionary.channels[..., 0].flatten()})
    for c in channels:  # the icons, for the interface's panel too
        save_png(folder / f"icon_{c}.png", dictionary.icons[c])
    record["dictionary"] = {"layer": deepest, "file": save_png(folder / "dictionary.png", dictionary.mosaic()).name,
                            "channels": channels}
    record["interactive"] = interface_data(model, reading, layers, config, folder)
    return record


def read_photo(model: Model, image: np.ndarray, layers: list[str]) -> ImageReading | None:
    """A photo through ``model`` once, for every plain reading its page makes: the logits (its
    predictions) and the layer of its neuron groups and semantic dictionary."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output: photo pages show its predictions")
    deepest = dictionary_layer(model, layers)
    return read_image(model, image, [LOGITS] if deepest is None else [deepest, LOGITS])


def dictionary_layer(model: Model, layers: list[str]) -> str | None:
    """The layer of the photo pages' neuron groups and semantic dictionary: the deepest gallery
    layer with at least ``GROUPS`` positions (None: there is none)."""
    grids = [layer for layer in layers if _positions(model, layer) >= GROUPS]
    return grids[-1] if grids else None


def prefetch_icons(model: Model, readings: list[ImageReading], layers: list[str], config: GalleryConfig,
                   icon_cache: Path) -> None:
    """Render the dictionary icons of all photos (their ``read_photo`` readings) in one batched
    call before their pages are made (full batches, no icon rendered twice); the pages then read
    them from ``icon_cache``."""
    layer = dictionary_layer(model, layers)
    if layer is None or not readings:
        return
    needed = sorted({c for reading in readings for c in dictionary_channels(model, reading, layer, top=1)})
    channel_icons(model, needed, model.spatial_layer(layer).name, _icon_config(config), icon_cache)


def _icon_config(config: GalleryConfig):
    return replace(config.render, size=ICON_SIZE, steps=min(THUMBNAIL_STEPS, config.render.steps), progress=False)


def _caricatures(model: Model, image: np.ndarray, layers: list[str], steps: int) -> Caricatures:
    """One caricature per layer, in batches of ``CARICATURE_BATCH`` layers of similar depth;
    layer i keeps seed i, as in one batch."""
    parts = [caricature(model, image, layers[first : first + CARICATURE_BATCH],
                        CaricatureConfig(steps=steps, seed=first, progress=False))
             for first in range(0, len(layers), CARICATURE_BATCH)]
    if len(parts) == 1:
        return parts[0]
    return replace(parts[0], images=torch.cat([p.images for p in parts]), layers=[n for p in parts for n in p.layers],
                   labels=[n for p in parts for n in p.labels], similarity=torch.cat([p.similarity for p in parts]),
                   values=torch.cat([p.values for p in parts]), history=torch.cat([p.history for p in parts], dim=1),
                   manifest={"parts": [p.manifest for p in parts]})


def _class_factors(model: Model, image: np.ndarray, reference, folder: Path) -> dict[str, Any] | None:
    """Where the evidence for the classes lies: NMF (k=2) of all classes' attribution at the last
    spatial layer when its parts support different classes; when they name the same ones (at least
    ``SHARED_CLASSES`` of their top 4), the top classes' own attribution maps instead. None for
    models without classes or without a spatial layer of 2+ positions."""
    if model.num_classes is None:
        return None
    head = default_layer(model)
    height, width = model.layer(head).spatial
    if height * width < 2:
        return None
    everything = attribute_all_classes(model, image, head)
    factors = class_factors(everything, k=2)
    named = [[label for _, label in factors.top(f, 4)] for f in range(len(factors.maps))]
    shared = len(set(named[0]) & set(named[1]))
    if shared < SHARED_CLASSES:
        return {"layer": head, "mode": "parts", "shared": shared,
                "file": save_png(folder / "factors.png", factors.overlay(reference)).name,
                "classes": named, "colors": [_hex(c) for c in factor_colors(len(factors.maps))]}
    top = everything.scores.argsort(descending=True)[:CLASS_MAPS].tolist()
    spatial = everything.spatial
    maps = [{"label": everything.targets[k], "total": float(spatial[k].sum()),
             "file": save_png(folder / f"class_{i}.png", heat_overlay(reference, spatial[k], (0.1, 0.75, 0.3))).name}
            for i, k in enumerate(top)]
    return {"layer": head, "mode": "classes", "shared": shared, "named": named, "maps": maps}


def _positions(model: Model, layer: str) -> int:
    height, width = model.layer(layer).spatial
    return height * width


def _hex(color: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(255 * v):02x}" for v in color)
