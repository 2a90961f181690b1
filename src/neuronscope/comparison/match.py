"""Matching units across models: which unit of model B behaves like a given unit of model A.

    matches = ns.match_units(ns.load("efficientnet_lite0"), ns.load("efficientnet_lite1"))
    matches.cka                                  # (6, 6) linear CKA of every pair of layers
    matches.matches("blocks.4.2:17")             # its best matches in every layer of Lite1
    matches.heatmap(); matches.save("out/")

One streaming pass over an image source: every image goes to each model at that model's own
input size and preprocessing; each layer's map is resampled to a grid of relative positions
(``positions``) so that units of the two models are compared at the same places of the same
images; float64 sums (``statistics``) give the Pearson correlation of every unit pair and the
linear CKA of every pair of layers. Universality in the sense of Li et al. 2015 ("Convergent
learning") and Kornblith et al. 2019 (CKA).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..data.sources import ImageSource, bundled_source
from ..errors import NeuronscopeError
from ..models.model import Model
from .positions import layer_grid, pair_grids
from .result import UnitMatches
from .statistics import correlation, linear_cka
from .stream import Sums, run_pass


@dataclass(frozen=True)
class MatchConfig:
    """Settings of ``match_units``.

    Attributes:
        grid: the positions each pair of layers is compared on: ``"pair"`` (default: the
            smaller of the two layers' grids, so each pair keeps the finest resolution both
            have), ``"common"`` (the smallest grid of all layers, the same positions for every
            pair) or an int G (G x G). See ``positions`` for why area pooling.
        top: best matches per unit kept in the summary (``UnitMatches.top``).
        batch: images per forward pass.
        workers: decoding processes (None: automatic, as the examples pass); no effect on results.
        progress: show a progress bar over images.
    """

    grid: str | int = "pair"
    top: int = 5
    batch: int = 16
    workers: int | None = None
    progress: bool = True


def match_units(model_a: Model, model_b: Model, layers_a: Sequence[str] | None = None,
                layers_b: Sequence[str] | None = None, source: ImageSource | None = None,
                config: MatchConfig = MatchConfig()) -> UnitMatches:
    """Correlate every unit of ``layers_a`` (of ``model_a``) with every unit of ``layers_b`` (of
    ``model_b``) over the positions of ``source`` (default: the 330 bundled crops), and the
    linear CKA of every pair of layers, in one streaming pass.

    Layers default to ``gallery.plan.representative_layers`` of each model (the last layer of
    each of the 6 deepest stages); they are sorted by relative depth. The same model may be
    given twice (one forward pass then serves both sides).
    """
    _check(config)
    names_a, names_b = _layers(model_a, layers_a), _layers(model_b, layers_b)
    grids = pair_grids({n: layer_grid(model_a.layer(n).spatial) for n in names_a},
                       {n: layer_grid(model_b.layer(n).spatial) for n in names_b}, config.grid)
    channels = ({n: model_a.layer(n).channels for n in names_a}, {n: model_b.layer(n).channels for n in names_b})
    source = source if source is not None else bundled_source()
    sums = run_pass((model_a, model_b), (names_a, names_b), source, Sums.start(grids, channels, model_b is model_a),
                    config.batch, config.workers, config.progress)
    return _finish(model_a, model_b, names_a, names_b, sums, source, config)


def _finish(model_a: Model, model_b: Model, names_a: list[str], names_b: list[str], sums: Sums,
            source: ImageSource, config: MatchConfig) -> UnitMatches:
    cka = np.full((len(names_a), len(names_b)), np.nan)
    grid_array = np.zeros((len(names_a), len(names_b), 2), dtype=np.int64)
    correlations = {}
    for i, a in enumerate(names_a):
        for j, b in enumerate(names_b):
            grid = sums.grids[(a, b)]
            cross = sums.cross[(a, b)]
            correlations[(a, b)] = correlation(cross.a, cross.b, cross).astype(np.float32)
            cka[i, j] = linear_cka(cross.a, cross.b, cross)
            grid_array[i, j] = grid
    dead = ({}, {})
    for (a, b), cross in sums.cross.items():
        dead[0].setdefault(a, set()).update(np.flatnonzero(cross.a.dead()).tolist())
        dead[1].setdefault(b, set()).update(np.flatnonzero(cross.b.dead()).tolist())
    return UnitMatches(
        model_a.name, model_b.name, names_a, names_b,
        np.array([model_a.depth(n) for n in names_a]), np.array([model_b.depth(n) for n in names_b]),
        [model_a.layer(n).channels for n in names_a], [model_b.layer(n).channels for n in names_b],
        cka, grid_array, correlations,
        {n: sorted(dead[0].get(n, ())) for n in names_a}, {n: sorted(dead[1].get(n, ())) for n in names_b},
        sums.images, source.name, config.top,
        manifest={"config": asdict(config), "skipped": len(source.skipped),
                  "model_specs": [_spec(model_a), _spec(model_b)]})


def _layers(model: Model, layers: Sequence[str] | None) -> list[str]:
    from ..gallery.plan import representative_layers

    if layers is None:
        return representative_layers(model)
    if isinstance(layers, str):
        layers = [layers]
    names = list(dict.fromkeys(model.layer(name).name for name in layers))  # unknown names: did you mean
    if not names:
        raise NeuronscopeError(f"no layers of {model.name} to compare")
    return sorted(names, key=model.depth)


def _spec(model: Model) -> dict | None:
    return model.spec.to_dict() if getattr(model, "spec", None) is not None else None


def _check(config: MatchConfig) -> None:
    for name in ("top", "batch"):
        if getattr(config, name) < 1:
            raise NeuronscopeError(f"MatchConfig.{name} must be at least 1, got {getattr(config, name)}")
    if config.workers is not None and config.workers < 0:
        raise NeuronscopeError(f"MatchConfig.workers must be 0 or more (or None for automatic), got {config.workers}")
