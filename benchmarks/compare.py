"""The matching pass of ``neuronscope compare`` against the bare forward passes it cannot avoid.

    .venv/bin/python benchmarks/compare.py [--images 330] [--out benchmarks/results/compare.json]

Lite0 vs Lite1, default layers (6 each, 36 pairs), the bundled crops. Each model's layer table
(its one probe pass) is built first and timed apart. Then, in one run: the baseline
(the same images decoded and prepared by the same loader, each model's plain forward pass
``model.module(model.normalize(x))`` under no_grad, nothing captured, nothing summed), then
``ns.match_units``, then the baseline again (the machine drifts; the mean of the two is used).
Writes seconds, images/s and the ratio match / baseline.
"""
from __future__ import annotations

import argparse
import os
import time

import torch

import neuronscope as ns
from neuronscope.data import bundled_source, first
from neuronscope.data.loading import Preparer, batches, default_workers
from neuronscope.manifest import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=330)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/compare.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    a, b = ns.load("efficientnet_lite0"), ns.load("efficientnet_lite1")
    source = first(bundled_source(), args.images)
    config = ns.MatchConfig(progress=False)
    workers = default_workers(source, config.batch)
    start = time.perf_counter()
    a.all_layers(), b.all_layers()  # each model's one probe pass, once per model, not per image
    tables_s = time.perf_counter() - start
    load_before = os.getloadavg()
    before = baseline(a, b, source, config.batch, workers)
    start = time.perf_counter()
    matches = ns.match_units(a, b, source=source, config=config)
    match_s = time.perf_counter() - start
    after = baseline(a, b, source, config.batch, workers)
    plain = (before + after) / 2
    report = {
        "models": [a.name, b.name], "layers_a": matches.layers_a, "layers_b": matches.layers_b,
        "images": matches.images, "batch": config.batch, "workers": workers, "grid": config.grid,
        "layer_tables_s": round(tables_s, 2), "match_s": round(match_s, 2), "match_images_per_s": round(matches.images / match_s, 2),
        "plain_forward_s": round(plain, 2), "plain_forward_runs_s": [round(before, 2), round(after, 2)],
        "plain_images_per_s": round(matches.images / plain, 2), "match_over_plain": round(match_s / plain, 3),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "threads": torch.get_num_threads(), "versions": {"torch": torch.__version__, "neuronscope": ns.__version__},
    }
    write_json(args.out, report)
    print(report)


def baseline(a: ns.Model, b: ns.Model, source, batch: int, workers: int) -> float:
    """Seconds to decode, prepare and run both models' full forward passes over ``source``."""
    preparers = [Preparer.of(a, a.input_size), Preparer.of(b, b.input_size)]
    start = time.perf_counter()
    with torch.no_grad():
        for part in batches(source, preparers, 0, batch, workers):
            if part.items:
                a.module(a.normalize(part.inputs[0]))
                b.module(b.normalize(part.inputs[1]))
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
