"""Ablation against attribution, per layer: zeroing a layer's k channels most attributed to an
image's top class against k random channels (32 draws), for Lite0's six gallery layers and its
head, on bundled photos. Also the cost of one ``intervene`` call against a plain forward pass.

    .venv/bin/python benchmarks/ablation.py [--photos chelsea coffee ...] [--ks 1 4 16]

Writes ``benchmarks/results/ablation.json``: per photo, layer and k the target's logit drop for the
top-attributed channels, the mean and largest drop over random draws, the probability drops, and
the attribution's own estimate of the top drop (the sum of the k channels' attributions).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import machine

import neuronscope as ns
from neuronscope.attribution import default_layer
from neuronscope.manifest import write_json

LAYERS = ["blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2", "blocks.5.3", "blocks.6.0"]
PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "motorcycle", "china", "flower"]


def timing(model: ns.Model, repeats: int = 20) -> dict:
    inputs = model.input("chelsea")
    with torch.no_grad():
        model.module(model.normalize(inputs))  # warm
        start = time.perf_counter()
        for _ in range(repeats):
            model.module(model.normalize(inputs))
        forward = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        ns.intervene(model, inputs, ns.Ablate("blocks.5.3:17"))
    intervention = (time.perf_counter() - start) / repeats
    return {"forward_seconds": round(forward, 4), "intervene_seconds": round(intervention, 4),
            "ratio": round(intervention / forward, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", default=PHOTOS)
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ablation.json"))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = ns.load("efficientnet_lite0")
    layers = [*LAYERS, default_layer(model)]
    config = ns.AblationCheckConfig(ks=tuple(args.ks), trials=args.trials)
    started = time.perf_counter()
    rows = []
    for photo in args.photos:
        for row in ns.ablation_check(model, photo, layers, config):
            rows.append({"photo": photo, **row.to_dict()})
            print(json.dumps(rows[-1]), file=sys.stderr)
    table = []
    for layer in layers:
        for k in args.ks:
            mine = [r for r in rows if r["layer"] == layer and r["k"] == k]
            table.append({"layer": layer, "k": k, "photos": len(mine),
                          "mean_top_drop": round(float(np.mean([r["top_drop"] for r in mine])), 3),
                          "mean_random_drop": round(float(np.mean([r["random_drop"] for r in mine])), 3),
                          "photos_top_above_random_mean": sum(r["top_drop"] > r["random_drop"] for r in mine),
                          "photos_top_above_every_random_draw": sum(r["top_drop"] > r["random_drop_max"] for r in mine),
                          "mean_predicted": round(float(np.mean([r["predicted"] for r in mine])), 3)})
    result = {"machine": machine(), "model": "efficientnet_lite0", "ks": args.ks, "trials": args.trials,
              "photos": args.photos, "check_seconds": round(time.perf_counter() - started, 1),
              "cost": timing(model), "table": table, "rows": rows}
    write_json(args.out, result)
    for line in table:
        print(json.dumps(line))
    print(json.dumps(result["cost"]))


if __name__ == "__main__":
    main()
