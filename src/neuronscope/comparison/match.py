"""Matching units across models: which unit of model B behaves like a given unit of model A.

    matches = ns.match_units(ns.load("efficientnet_lite0"), ns.load("efficientnet_lite1"))   # bundled crops
    matches.cka                                  # (6, 6) linear CKA of every pair of layers
    matches.matches("blocks.4.2:17")             # its best matches in every layer of Lite1
    matches.heatmap(); matches.save("out/")

One streaming pass over an image source (``stream.stream`` with a ``UnitMatching`` accumulator,
which a gallery shares with its other consumers): every image goes to each model at that model's
own input size and preprocessing; each layer's map is resampled to a grid of relative positions
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
from ..models.depth import representative_layers
from ..models.model import Model
from ..stream import PassConfig, PassResult, Runner, stream
from .accumulate import UnitMatching
from .positions import layer_grid, pair_grids
from .result import UnitMatches
from .statistics import correlation, linear_cka


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

    def pass_config(self) -> PassConfig:
        return PassConfig(batch=self.batch, workers=self.workers, progress=self.progress)


def match_units(model_a: Model, model_b: Model, source: ImageSource | None = None,
                layers_a: Sequence[str] | None = None, layers_b: Sequence[str] | None = None,
                config: MatchConfig = MatchConfig(), runner: Runner | None = None) -> UnitMatches:
    """Correlate every unit of ``layers_a`` (of ``model_a``) with every unit of ``layers_b`` (of
    ``model_b``) over the positions of ``source`` (default: the 330 bundled crops), and the
    linear CKA of every pair of layers, in one streaming pass (``runner``: another engine).

    Layers default to ``models.representative_layers`` of each model (the last layer of each of
    the 6 deepest stages); they are sorted by relative depth. The same model may be given twice
    (one forward pass then serves both sides).
    """
    matching = unit_matching(model_a, model_b, layers_a, layers_b, config)
    source = source if source is not None else bundled_source()
    result = stream(source, [matching], config.pass_config(), runner=runner,
                    what=f"compare {model_a.name} / {model_b.name}")
    return finish_matching(matching, source, result, config)


def unit_matching(model_a: Model, model_b: Model, layers_a: Sequence[str] | None = None,
                  layers_b: Sequence[str] | None = None, config: MatchConfig = MatchConfig()) -> UnitMatching:
    """The accumulator of ``match_units`` (checked layers and grids), for a pass shared with
    other consumers; ``finish_matching`` turns it into ``UnitMatches`` once the pass is done."""
    _check(config)
    names_a, names_b = _layers(model_a, layers_a), _layers(model_b, layers_b)
    grids = pair_grids({n: layer_grid(model_a.layer(n).spatial) for n in names_a},
                       {n: layer_grid(model_b.layer(n).spatial) for n in names_b}, config.grid)
    return UnitMatching(model_a, model_b, names_a, names_b, grids)


def finish_matching(matching: UnitMatching, source: ImageSource, result: PassResult,
                    config: MatchConfig = MatchConfig()) -> UnitMatches:
    """The ``UnitMatches`` of a finished pass: correlations, CKA, dead units."""
    model_a, model_b = matching.readers[0].model, matching.readers[1].model
    names_a, names_b = matching.layers_a, matching.layers_b
    cka = np.full((len(names_a), len(names_b)), np.nan)
    grid_array = np.zeros((len(names_a), len(names_b), 2), dtype=np.int64)
    correlations = {}
    for i, a in enumerate(names_a):
        for j, b in enumerate(names_b):
            grid = matching.grids[(a, b)]
            cross = matching.cross[(a, b)]
            correlations[(a, b)] = correlation(cross.a, cross.b, cross).astype(np.float32)
            cka[i, j] = linear_cka(cross.a, cross.b, cross)
            grid_array[i, j] = grid
    dead = ({}, {})
    for (a, b), cross in matching.cross.items():
        dead[0].setdefault(a, set()).update(np.flatnonzero(cross.a.dead()).tolist())
        dead[1].setdefault(b, set()).update(np.flatnonzero(cross.b.dead()).tolist())
    return UnitMatches(
        model_a.name, model_b.name, names_a, names_b,
        np.array([model_a.depth(n) for n in names_a]), np.array([model_b.depth(n) for n in names_b]),
        [model_a.layer(n).channels for n in names_a], [model_b.layer(n).channels for n in names_b],
        cka, grid_array, correlations,
        {n: sorted(dead[0].get(n, ())) for n in names_a}, {n: sorted(dead[1].get(n, ())) for n in names_b},
        matching.images, source.name, config.top,
        manifest={"config": asdict(config), "skipped": len(result.skipped),
                  "model_specs": [_spec(model_a), _spec(model_b)]})


def _layers(model: Model, layers: Sequence[str] | None) -> list[str]:
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
