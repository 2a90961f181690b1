"""How defined a unit's weakest images are: at a ReLU6 layer many channels are zero on most of
the bundled crops, so their "40 weakest" images are ties at zero (drawn by a hash), not images
that drive the unit down. Beside the interpretability table (docs/interpretability.md).

    .venv/bin/python benchmarks/weak_pools.py [--layers ...] [--units 64]

Per layer, over the first ``--units`` channels of Lite0 on the bundled crops (``ScoreConfig``'s
pool of 40): the fraction whose 40th strongest crop still has a positive peak, and the fraction
whose 40 weakest crops all peak at zero (or below 1e-6). Writes benchmarks/results/weak_pools.json.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import machine

import neuronscope as ns
from neuronscope.interpretability import ScoreConfig
from neuronscope.manifest import write_json

LAYERS = [f"blocks.{b}.{kind}" for kind in ("act2", "bn2") for b in ("1.1", "2.1", "3.2", "4.2", "5.3", "6.0")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", nargs="+", default=LAYERS)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/results/weak_pools.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    pool = ScoreConfig().pool
    found = ns.dataset_examples(model, ns.data.bundled_source(), args.layers,
                                ns.ExamplesConfig(k=pool, weakest=True, progress=False))
    rows = {}
    for layer in args.layers:
        strongest, weakest = found[layer].top_values[: args.units], found[layer].bottom_values[: args.units]
        rows[layer] = {"units": len(strongest),
                       "strongest_pool_all_positive": float((strongest[:, pool - 1] > 1e-6).mean()),
                       "weakest_pool_all_zero": float((abs(weakest[:, pool - 1]) <= 1e-6).mean())}
        print(layer, rows[layer], flush=True)
    write_json(Path(args.out), {"benchmark": "weak_pools", "machine": machine(), "model": model.name, "pool": pool,
                                "layers": rows})


if __name__ == "__main__":
    main()
