"""Activation atlases: a map of what a layer represents over a dataset (Carter et al. 2019).

    atlas = activation_atlas(model, "photos", "blocks.4.2")                    # the bundled crops
    atlas.save("out/atlas")                                                    # atlas.png, icons, cells.json
    tabby = activation_atlas(model, "photos", "blocks.4.2", target="tabby")    # a class activation atlas

Activation vectors at random interior positions of the source's images are laid out in 2-D by
similarity (t-SNE, cosine), binned on a G x G grid; every cell with enough members gets the mean
of their activations as its direction, the mean of their class attributions (its label: the class
it supports most), and a feature visualization of that direction at the layer's centre position.
A class atlas keeps only the samples that support one class (``classes``), then does the same.
"""
from __future__ import annotations

import time
from dataclasses import replace

from ..data.resolve import resolve_source
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..manifest import build_manifest
from ..models.digest import weights_digest
from ..models.model import Model
from .classes import class_samples
from .collect import Samples, collect
from .config import AtlasConfig
from .icons import ATLAS_TRANSFORMS, centre_activations, icon_config, render_icons
from .layout import (
    grid_cells,
    layout_2d,
    normalize_layout,
    require_umap,
    umap_available,
)
from .result import Atlas
from .whitening import RIDGE, whitened_cosine, whitening


def activation_atlas(model: Model, source: ImageSource | str | None, layer: str, config: AtlasConfig | None = None,
                     target: str | int | None = None, *, samples: Samples | None = None) -> Atlas:
    """The activation atlas of ``layer`` over ``source`` (an ImageSource, or what
    ``data.resolve_source`` reads: None or ``"photos"`` for the bundled crops, a folder, ...), or
    with ``target`` (a class name or index) the class activation atlas of that class.
    ``samples``: ones ``collect`` (or an ``AtlasSamples`` accumulator) made before, of this
    layer, to make several atlases from one pass."""
    config = config or AtlasConfig()
    info = model.spatial_layer(layer)
    if config.layout == "umap":
        require_umap()
    k = None if target is None else model.class_index(target)
    source = resolve_source(source)
    threshold = config.cell_threshold(k is not None)
    timing: dict[str, float] = {}
    start = time.perf_counter()
    if samples is None:
        _check_enough(len(source) * config.positions, threshold, None)  # before any work
        samples = collect(model, source, info.name, replace(config, attributions=config.attributions or k is not None))
    elif samples.layer != info.name:
        raise NeuronscopeError(f"the samples are of layer '{samples.layer}', not '{info.name}'")
    timing["collect_s"] = time.perf_counter() - start
    s = whitening(samples.activations)  # of every sample, before a class filter
    chosen = samples if k is None else samples.subset(class_samples(samples.attributions, k, config.class_samples))
    _check_enough(len(chosen), threshold, target)
    start = time.perf_counter()
    xy, used = layout_2d(chosen.activations, config.layout, config.seed)
    unit_xy = normalize_layout(xy)
    cells = grid_cells(unit_xy, chosen.activations, config.grid, threshold, chosen.attributions)
    timing["layout_s"] = time.perf_counter() - start
    if len(cells) == 0:
        raise NeuronscopeError(f"no cell of the {config.grid}x{config.grid} grid has more than {threshold} of the "
                               f"{len(chosen)} samples: use a smaller grid or a lower threshold, or more images")
    start = time.perf_counter()
    vectors = cells.directions @ s if config.whiten else cells.directions  # S is symmetric
    render = icon_config(config.steps, config.icon, config.seed, False)
    icons, values, seeds = render_icons(model, info.name, vectors, render, cosine_power=config.cosine_power,
                                        attempts=config.attempts, progress=config.progress)
    timing["icons_s"] = time.perf_counter() - start
    similarity = whitened_cosine(centre_activations(model, info.name, icons), cells.directions,
                                 s if config.whiten else None)
    atlas = Atlas(model.name, info.name, k, _label(model, k), config, used, unit_xy, cells, icons, values, seeds,
                  similarity, tuple(model.labels) if model.labels else None, len(samples), len(chosen), timing)
    atlas.manifest = build_manifest(
        "atlas", model=model, weights=weights_digest(model), input_size=model.input_size, device=str(model.device),
        layer=info.name, target=k, target_label=atlas.target_label, source=source.name,
        source_fingerprint=source.fingerprint(), config=config,
        layout={"requested": config.layout, "used": used, "umap_installed": umap_available()},
        samples=len(samples), kept_samples=len(chosen), threshold=threshold, whitening_ridge=RIDGE,
        icon_render=render, icon_transforms=ATLAS_TRANSFORMS, diagonal_dominance=atlas.diagonal_dominance(),
        timing=timing, cells=atlas.cell_table())
    return atlas


def _check_enough(count: int, threshold: int, target) -> None:
    """A grid needs more than ``threshold`` samples, and a layout at least a few."""
    if count <= max(threshold, 3):
        what = f"class '{target}' keeps" if target is not None else "there are"
        raise NeuronscopeError(f"too few samples for the grid: {what} {count}, and a cell needs more than {threshold}; "
                               "use more images or positions, or a lower threshold")


def _label(model: Model, k: int | None) -> str | None:
    if k is None:
        return None
    return model.labels[k] if model.labels else str(k)

