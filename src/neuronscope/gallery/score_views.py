"""The gallery's interpretability scores (``GalleryConfig.scores``): per shown layer of the
network, one ``interpretability`` call scores every channel, ``RANDOM_SCORED`` random directions
of the layer (the baseline) and the shown dictionary features, with the gallery's own renders of
the shown units as their visualizations; and the records the pages read."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.photos import load_image
from ..data.sources import ImageSource
from ..dictionaries.layer import SUFFIX as FEATURES_SUFFIX
from ..errors import NeuronscopeError
from ..interpretability import InterpretabilityScores, ScoreConfig, UnitScore, interpretability, with_random_directions
from ..interpretability.baseline import SUFFIX as RANDOM_SUFFIX
from ..manifest import stable_hash
from ..models.derived import derived_name
from ..models.model import Model
from ..stream import Runner

RANDOM_SCORED = 16
"""Random directions scored per layer as its baseline (only their mean is shown)."""


def check_source(source: ImageSource, config: ScoreConfig) -> None:
    """Refuse, before anything is rendered, a source too small for ``config``'s pools (scoring
    refuses it too, but only after its pass)."""
    if len(source) < 2 * config.pool:
        raise NeuronscopeError(f"scores need the {config.pool} strongest and weakest images of each unit "
                               f"(ScoreConfig.pool), but the image source {source.name} has {len(source)} images: "
                               f"use a source of at least {2 * config.pool} images, or build without scores")


def score_key(config: ScoreConfig, source: str, units: Sequence[str], visualized: Sequence[str]) -> str:
    """What a layer's recorded scores depend on: the settings (not the progress bar), the image
    source's fingerprint, the units scored and those scored by their visualizations too."""
    settings = asdict(replace(config, progress=False))
    return stable_hash([settings, source, sorted(units), sorted(visualized)])


def features_of(layer: str) -> str:
    """The name of ``layer``'s dictionary features (``GalleryConfig.features``)."""
    return derived_name(layer, FEATURES_SUFFIX)


def scored_units(model: Model, layer: str, features: Sequence[int]) -> tuple[list[str], str | None]:
    """The units of one layer's call: the layer (every channel), its first ``RANDOM_SCORED``
    random directions, and ``features`` of its feature layer; and that feature layer (None
    without one)."""
    random = derived_name(layer, RANDOM_SUFFIX)
    count = min(RANDOM_SCORED, model.layer(layer).channels)
    feature_layer = features_of(layer)
    if feature_layer not in model.derived:
        feature_layer, features = None, []
    return [layer, *(f"{random}:{i}" for i in range(count)), *(f"{feature_layer}:{f}" for f in features)], feature_layer


def visualizations(folder: Path, records: dict[str, dict[str, Any]], units: Sequence[str]) -> dict[str, torch.Tensor]:
    """The gallery's rendered pictures of those ``units`` that have them, as (N, 3, H, W) in [0, 1]
    (read back from ``folder/<layer>/<channel>/``, as a page shows them)."""
    found = {}
    for unit in units:
        record = records.get(unit)
        if record is None:
            continue
        layer, channel = unit.rsplit(":", 1)
        pictures = [load_image(folder / layer / channel / name) for name in record["fv"]]
        found[unit] = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float()
    return found


def score_layer(model: Model, source: ImageSource, layer: str, units: list[str], config: ScoreConfig,
                pictures: dict[str, torch.Tensor], cache_dir: Path | None,
                runner: Runner | None = None) -> InterpretabilityScores:
    """One ``interpretability`` call (one examples pass, run by ``runner``) for ``units`` of
    ``layer`` and its derived layers, the layer's random directions attached to ``model`` for it."""
    studied = with_random_directions(model, layer)
    return interpretability(studied, source, units, config, visualizations=pictures, cache_dir=cache_dir, runner=runner)


def layer_records(scores: InterpretabilityScores, layer: str, feature_layer: str | None, key: str) -> dict[str, dict]:
    """The ``scores`` records of the layer (its means of every kind, its channels) and of its
    feature layer (its features), by layer name."""
    names = {"neurons": layer, "random": derived_name(layer, RANDOM_SUFFIX), "features": feature_layer}
    means = {kind: scores.mean(name) if name is not None else None for kind, name in names.items()}
    means["visual"] = scores.mean(layer, visual=True)
    settings = scores.manifest.get("config", {})
    common = {"similarity": scores.similarity, "tasks": settings.get("tasks"), "references": settings.get("references"),
              "random_scored": sum(u.layer == names["random"] for u in scores.units)}
    records = {layer: {**common, "key": key, "means": means, "timing": scores.timing,
                       "units": _units(scores, layer)}}
    if feature_layer is not None:
        records[feature_layer] = {**common, "of": layer, "units": _units(scores, feature_layer),
                                  "means": {"neurons": None, "random": None, "features": means["features"],
                                            "visual": scores.mean(feature_layer, visual=True)}}
    return records


def _units(scores: InterpretabilityScores, layer: str) -> dict[str, dict[str, Any]]:
    return {str(u.channel): _unit(u) for u in scores.units if u.layer == layer}


def _unit(unit: UnitScore) -> dict[str, Any]:
    return {"score": unit.score, "right": unit.right, "margin": unit.margin, "visual_score": unit.visual_score,
            "constant": unit.constant, "verdict": unit.verdict}
