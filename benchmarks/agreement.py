"""Does attribution at a hidden layer rank the classes right? One-step vs integrated gradients.

For each layer and photo: the correlation over all 1000 classes between the attribution summed
over the layer and the logit (``logit_agreement``), for one-step activation x gradient
(``attribute_all_classes``) and for integrated gradients from a zero baseline
(``class_support``, forward mode); and the integrated gradients' completeness error for the
photo's top class at several path lengths. Times per method. A measurement, not a test.

    .venv/bin/python benchmarks/agreement.py [--threads 2] [--out benchmarks/results/agreement.json]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.attribution.hidden import attribute_all_classes, logit_agreement
from neuronscope.attribution.integrated import class_support
from neuronscope.manifest import write_json

LAYERS = ["blocks.3.2", "blocks.4.2", "blocks.5.3", "blocks.6.0", "act2"]
PHOTOS = ["chelsea", "coffee"]
STEPS = 64
COMPLETENESS_STEPS = (64, 256, 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/agreement.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    table = {}
    for layer in LAYERS:
        row = {"one_step": [], "integrated": [], "one_step_s": 0.0, "integrated_s": 0.0}
        for photo in PHOTOS:
            start = time.perf_counter()
            row["one_step"].append(round(logit_agreement(attribute_all_classes(model, photo, layer)), 4))
            row["one_step_s"] += time.perf_counter() - start
            start = time.perf_counter()
            row["integrated"].append(round(class_support(model, photo, layer, steps=STEPS).agreement(), 4))
            row["integrated_s"] += time.perf_counter() - start
        errors = {}
        for steps in COMPLETENESS_STEPS:
            support = class_support(model, PHOTOS[0], layer, steps=steps)
            top = int(support.logits.argmax())
            change = support.logits[top] - support.baseline_logits[top]
            errors[str(steps)] = float((support.total[top] - change).abs() / change.abs())
        row["completeness_error_top_class"] = errors
        row["one_step_s"], row["integrated_s"] = round(row["one_step_s"], 1), round(row["integrated_s"], 1)
        table[layer] = row
        print(layer, row, flush=True)
        write_json(Path(args.out), {"model": model.name, "photos": PHOTOS, "integrated_steps": STEPS,
                                    "baseline": "zeros", "layers": table, "torch": torch.__version__})
    print(args.out)


if __name__ == "__main__":
    main()
