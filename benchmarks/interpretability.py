"""The per-layer table of the two-choice interpretability score: neurons vs random directions vs
dictionary features, exemplar-based vs visualization-based, seed agreement, and the cost of
scoring a layer as a multiple of its examples pass.

    .venv/bin/python benchmarks/interpretability.py [--layers blocks.1.1 ...] [--visual 8]

For Lite0 over the bundled photo crops, judged by Lite2 (``ScoreConfig`` defaults). Per layer:
the layer's channels; as many random directions (``with_random_directions``, seed 0); as many
dictionary features as channels, the most frequent non-dense ones of a dictionary at the
defaults (trained as the ``features`` command trains it, without its quality report; cached under
``--cache``), all scored in
one call (one pass). The first ``--visual`` units of each kind also get a visualization-based
score (one render each at the gallery's settings: 128 steps, 128 px). The neurons are scored
again with task seed 1, at 20 and at 40 tasks (per-unit Spearman). The cost: the scoring call's time (pass, crops,
similarity model, tasks; renders excluded; embeddings of crops that an earlier layer's call
embedded are reused, as one ``Similarity`` judges all calls) over a plain ``dataset_examples`` pass of the layer,
both in this process. Writes ``benchmarks/results/interpretability.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import machine
from scipy.stats import spearmanr

import neuronscope as ns
from neuronscope.dictionaries import DictionaryConfig, learn_dictionary
from neuronscope.interpretability import ScoreConfig, Similarity, interpretability, with_random_directions
from neuronscope.manifest import write_json

LAYERS = ["blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2", "blocks.5.3", "blocks.6.0"]


def render_first(model, units: list[str]) -> dict[str, torch.Tensor]:
    if not units:
        return {}
    result = ns.render_units(model, units, ns.RenderConfig(steps=128, size=128, progress=False))
    return {unit: result.images[i : i + 1] for i, unit in enumerate(units)}


def kinds_of(model, scores, layer: str) -> dict[str, dict]:
    out = {}
    for kind, name in (("neurons", layer), ("random directions", f"{layer}.random"), ("features", f"{layer}.features")):
        units = [u for u in scores.units if u.layer == name]
        if not units:
            continue
        scored = [u for u in units if u.score is not None]
        visual = [u for u in scored if u.visual_score is not None]
        out[kind] = {"units": len(units), "constant": sum(u.constant for u in units),
                     "one_photo": sum(u.one_group for u in units),
                     "mean_score": float(np.mean([u.score for u in scored])),
                     "mean_right": float(np.mean([u.right for u in scored])),
                     "mean_margin": float(np.mean([u.margin for u in scored])),
                     "visual_units": len(visual),
                     "mean_score_of_visualized": float(np.mean([u.score for u in visual])) if visual else None,
                     "mean_visual_score": float(np.mean([u.visual_score for u in visual])) if visual else None,
                     "mean_visual_right": float(np.mean([u.visual_right for u in visual])) if visual else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", nargs="+", default=LAYERS)
    parser.add_argument("--visual", type=int, default=8)
    parser.add_argument("--no-features", action="store_true")
    parser.add_argument("--append", action="store_true", help="keep the layers already in --out")
    parser.add_argument("--units", type=int, default=None,
                        help="score only the first N channels and N random directions of each layer (default: all)")
    parser.add_argument("--cache", default=".cache/benchmarks")
    parser.add_argument("--out", default="benchmarks/results/interpretability.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    source = ns.data.bundled_source()
    config = ScoreConfig(progress=False)
    judge = Similarity(ns.load("efficientnet_lite2"), config.similarity_size)  # embeddings shared by all calls
    previous = json.loads(Path(args.out).read_text()) if args.append and Path(args.out).exists() else {}
    rows = previous.get("layers", {})
    for layer in args.layers:
        started = time.perf_counter()
        ns.dataset_examples(model, source, layer, ns.ExamplesConfig(progress=False))
        examples_s = time.perf_counter() - started
        studied = with_random_directions(model, layer)
        channels = model.layer(layer).channels
        units = ([layer, f"{layer}.random"] if args.units is None else
                 [f"{name}:{i}" for name in (layer, f"{layer}.random") for i in range(min(args.units, channels))])
        features = []
        if not args.no_features:
            dictionary = learn_dictionary(model, source, layer, DictionaryConfig(report=False, progress=False),
                                          also_train_on=ns.data.extra_source(), cache_dir=Path(args.cache))
            studied = ns.with_features(studied, dictionary)
            features = [f"{layer}.features:{i}" for i in studied.derived[f"{layer}.features"].ranked()[:channels]]
        visual_units = ([f"{layer}:{i}" for i in range(args.visual)] + [f"{layer}.random:{i}" for i in range(args.visual)]
                        + features[: args.visual])
        tick = time.perf_counter()
        visualizations = render_first(studied, visual_units)
        render_s = time.perf_counter() - tick
        tick = time.perf_counter()
        scores = interpretability(studied, source, units + features, config, visualizations=visualizations, judge=judge)
        scoring_s = time.perf_counter() - tick
        apart = interpretability(studied, source, units + features, replace(config, other_groups=True), judge=judge)
        rho = {}
        neurons = [u for u in units if not u.startswith(f"{layer}.random")]
        for tasks in (20, 40):  # seed agreement at the paper's 20 tasks and at 40 (free: the pools are embedded once)
            pair = [interpretability(studied, source, neurons, replace(config, tasks=tasks, seed=seed), judge=judge)
                    for seed in (0, 1)]
            both = [(a, b) for a, b in zip(*(p.units for p in pair)) if a.score is not None and b.score is not None]
            for field in ("score", "right", "margin"):
                rho[f"{field}@{tasks}"] = float(spearmanr([getattr(a, field) for a, _ in both],
                                                          [getattr(b, field) for _, b in both])[0])
        rows[layer] = {"channels": channels, "tasks": config.tasks, "kinds": kinds_of(studied, scores, layer),
                       "kinds_other_photos": kinds_of(studied, apart, layer), "seed_spearman": rho,
                       "examples_pass_s": examples_s, "scoring_s": scoring_s, "scoring_timing": scores.timing,
                       "cost_vs_examples_pass": scoring_s / examples_s, "render_s": render_s,
                       "units_scored": len(scores.units)}
        print(layer, {k: round(v["mean_score"], 3) for k, v in rows[layer]["kinds"].items()},
              {k: round(v["mean_score"], 3) for k, v in rows[layer]["kinds_other_photos"].items()}, rho,
              f"cost {scoring_s / examples_s:.1f}x", flush=True)
        write_json(Path(args.out), {"benchmark": "interpretability", "command": " ".join(sys.argv[1:]), "machine": machine(), "config": config,
                                    "model": model.name, "similarity": scores.similarity, "source": source.name,
                                    "layers": rows})


if __name__ == "__main__":
    main()
