"""``interpretability``: the two-choice score of every unit asked for, from one examples pass.

    scores = interpretability(model, bundled_source(), "blocks.4.2")
    scores.mean("blocks.4.2"); scores["blocks.4.2:17"].score
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples import ExamplesConfig, dataset_examples
from ..examples.inputs import ExampleImages
from ..examples.receptive import effective_extent
from ..examples.results import LayerExamples
from ..examples.topk import crop_box
from ..manifest import build_manifest
from ..models.model import Model
from ..models.spec import load
from ..stream import Runner
from ..units import parse_unit
from .config import ScoreConfig, similarity_model_name
from .result import InterpretabilityScores, UnitScore
from .similarity import Similarity
from .tasks import task_rng, two_choice

STRONGEST_KEPT = 6
"""Strongest images recorded per unit (for sheets and pages)."""


def interpretability(model: Model, source: ImageSource, units: str | Sequence[str], config: ScoreConfig = ScoreConfig(), *,
                     visualizations: Mapping[str, torch.Tensor] | None = None, cache_dir: Path | None = None,
                     runner: Runner | None = None, judge: Similarity | None = None) -> InterpretabilityScores:
    """Score ``units`` (layer names for all their channels, or addresses ``layer:channel``; a
    derived layer such as ``blocks.4.2.features`` or ``blocks.4.2.random`` too) by how well a
    machine tells their strongly from their weakly activating images of ``source``.

    One examples pass keeps each unit's ``config.pool`` strongest and weakest images; each of
    ``config.tasks`` tasks shows ``config.references`` of each and asks which of two held-out
    queries is the strong one, judging by the features of another model (``config.similarity``).
    ``visualizations`` (address -> (N, 3, H, W) images in [0, 1]) adds each such unit's
    ``visual_score``, with its visualizations as the strong references. ``cache_dir`` caches the
    examples pass (it resumes when interrupted); ``runner`` runs it elsewhere (Ray). ``judge``: a
    ``Similarity`` to reuse (its embeddings are kept, so scoring again with another task seed or
    other units of the same layer embeds nothing twice); by default one of ``config.similarity``.
    """
    started = time.perf_counter()
    wanted = channels_by_layer(model, units)
    if judge is None:
        similarity_name = similarity_model_name(model.name, config)
        judge = Similarity(load(similarity_name).to(model.device), config.similarity_size, batch=config.batch)
    elif judge.model.name == model.name:
        raise NeuronscopeError(f"{model.name} cannot judge its own units: give a Similarity of another model")
    similarity_name = judge.model.name
    found = dataset_examples(model, source, list(wanted), ExamplesConfig(k=config.pool, weakest=True, batch=config.batch,
                                                                         progress=config.progress), cache_dir, runner)
    passed = time.perf_counter()
    images = ExampleImages(source)
    scored = []
    for layer, channels in wanted.items():
        scored += _score_layer(model, found[layer], channels, judge, images, config, visualizations or {})
    manifest = build_manifest("interpretability", model=model, similarity=similarity_name, config=asdict(config),
                              source={"name": source.name, "fingerprint": source.fingerprint(), "items": len(source)})
    timing = {"examples_s": passed - started, "scoring_s": time.perf_counter() - passed,
              "total_s": time.perf_counter() - started}
    return InterpretabilityScores(model.name, similarity_name, scored, manifest, timing)


def channels_by_layer(model: Model, units: str | Sequence[str]) -> dict[str, list[int]]:
    """Layer -> channels of ``units`` (layer names for all their channels, or ``layer:channel``), in order."""
    addresses = [units] if isinstance(units, str) else list(units)
    if not addresses:
        raise NeuronscopeError("interpretability needs at least one unit or layer")
    wanted: dict[str, list[int]] = {}
    for address in addresses:
        unit = parse_unit(model, address)
        if unit.position is not None:
            raise NeuronscopeError(f"'{address}': scores are for whole channels (their strongest position on each "
                                   f"image); drop '@x,y'")
        channels = range(model.layer(unit.layer).channels) if unit.channel is None else [unit.channel]
        wanted.setdefault(unit.layer, []).extend(c for c in channels if c not in wanted.get(unit.layer, []))
    return wanted


def _score_layer(model: Model, examples: LayerExamples, channels: list[int], judge: Similarity, images: ExampleImages,
                 config: ScoreConfig, visualizations: Mapping[str, torch.Tensor]) -> list[UnitScore]:
    kept = examples.top_values.shape[1]
    if kept < config.pool:
        raise NeuronscopeError(f"the source has {examples.images} readable images, but scores need the "
                               f"{config.pool} strongest and weakest of each unit (ScoreConfig.pool): use a "
                               f"source of at least {2 * config.pool} images, or a smaller pool and query_from")
    extent = effective_extent(model, examples.layer, config.crop_mass)
    ranges = examples.top_values[:, 0].astype(np.float64) - examples.bottom_values[:, 0]
    threshold = max(1e-8, config.constant_below * float(ranges.max(initial=0.0)))
    pools = {}
    for channel in channels:
        if ranges[channel] >= threshold:
            pools[channel] = tuple([(e.key, examples.box(e.y, e.x, extent)) for e in pick(examples, channel)]
                                   for pick in (LayerExamples.top, LayerExamples.bottom))
    needed = [item for strong, weak in pools.values() for item in strong + weak]
    embedded = judge.embed_keyed(needed, lambda item: crop_box(images.example_image(model, item[0]), item[1],
                                                                judge.size), progress=config.progress)
    scores = []
    for channel in channels:
        address = f"{examples.layer}:{channel}"
        if channel not in pools:
            scores.append(UnitScore(address, examples.layer, channel, None, None, None, constant=True,
                                    peak_range=float(ranges[channel])))
            continue
        strong, weak = (np.stack([embedded[item] for item in pool]) for pool in pools[channel])
        groups = tuple([images.source.group(key) for key, _ in pool] for pool in pools[channel]) \
            if config.other_groups else None
        outcome = two_choice(strong, weak, config, task_rng(config.seed, address), groups=groups)
        if outcome is None:  # every strong (or weak) image comes from one group: no task can be posed
            scores.append(UnitScore(address, examples.layer, channel, None, None, None, peak_range=float(ranges[channel]),
                                    one_group=True, strongest=pools[channel][0][:STRONGEST_KEPT]))
            continue
        visual = None
        if address in visualizations:  # embedded only for a unit that is scored
            references = judge.embed(visualizations[address].float().cpu())
            visual = two_choice(strong, weak, config, task_rng(config.seed + 1, address), strong_references=references,
                                groups=groups)
        scores.append(UnitScore(address, examples.layer, channel, outcome.score, outcome.right, outcome.margin,
                                *((visual.score, visual.right, visual.margin) if visual else (None, None, None)),
                                peak_range=float(ranges[channel]), strongest=pools[channel][0][:STRONGEST_KEPT]))
    return scores
