"""All-classes attribution vs one class at a time, side by side in one run.

    .venv/bin/python benchmarks/attribution.py [--layer act2] [--image chelsea] [--out benchmarks/results/attribution.json]

For every one of the 1000 classes, the attribution ``a * dlogit/da`` at the layer: (a) with
``attribute_all_classes`` (the rest of the network runs on 100 copies of the activations, one
backward per 100 classes), (b) with ``attribute`` called once per class, the way a user without
the batched mode would do it. Also checks that both agree. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.attribution.hidden import attribute, attribute_all_classes
from neuronscope.manifest import write_json


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", nargs="+", default=["act2", "blocks.6.0", "blocks.4.2"])
    parser.add_argument("--image", default="chelsea")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "attribution.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    x = model.prepare(ns.data.photo(args.image))
    attribute(model, [0], x, args.layer[0])  # warm-up: layer table, oneDNN kernels
    runs = []
    for layer in args.layer:
        batched = attribute_all_classes(model, x, layer)
        batched_s = min(seconds(lambda: attribute_all_classes(model, x, layer)) for _ in range(3))
        start = time.perf_counter()
        singles = torch.cat([attribute(model, [k], x, layer).values for k in range(1000)])
        single_s = time.perf_counter() - start
        runs.append({
            "layer": layer,
            "all_classes_batched_s": round(batched_s, 3),
            "one_class_at_a_time_s": round(single_s, 3),
            "speedup": round(single_s / batched_s, 1),
            "max_abs_difference": float((batched.values - singles).abs().max()),
        })
        print(json.dumps(runs[-1]))
    write_json(args.out, {"benchmark": "attribution of 1000 classes to a hidden layer", "model": model.name,
                          "image": args.image, "input": list(x.shape), "threads": args.threads,
                          "torch": torch.__version__, "python": platform.python_version(), "runs": runs})


if __name__ == "__main__":
    main()
