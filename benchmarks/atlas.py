"""What an activation atlas costs: collection, layout and icons, beside plain channel visualizations.

One run, one machine: ``ns.activation_atlas(lite0, "photos", LAYER)`` at the defaults (the bundled crops,
330 images x 8 positions with class attributions, t-SNE, 8 x 8 grid, 80 px icons, 128 steps),
timed by stage; then, as the baseline, ``render_units`` of as many plain channels of the same
layer as the atlas has cells, at the same size, steps and transforms: the ratio says what the
atlas adds to rendering that many pictures. Also the collection without attributions (what the
class attributions cost) and the atlas's diagonal dominance. A measurement, not a test.

    .venv/bin/python benchmarks/atlas.py [--layer blocks.4.2] [--out benchmarks/results/atlas.json]
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.atlas import AtlasConfig, activation_atlas, collect
from neuronscope.atlas.icons import ATLAS_TRANSFORMS
from neuronscope.data.sources import bundled_source
from neuronscope.manifest import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="blocks.4.2")
    parser.add_argument("--steps", type=int, default=AtlasConfig().steps)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/atlas.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    config = AtlasConfig(steps=args.steps, progress=False)
    load_start = os.getloadavg()
    start = time.perf_counter()
    atlas = activation_atlas(model, "photos", args.layer, config=config)
    total = time.perf_counter() - start
    print(atlas, {k: round(v, 1) for k, v in atlas.timing.items()}, flush=True)

    start = time.perf_counter()
    collect(model, bundled_source(), args.layer, replace(config, attributions=False, progress=False))
    plain_collect = time.perf_counter() - start

    units = [f"{args.layer}:{c}" for c in range(len(atlas))]
    render = ns.RenderConfig(steps=config.steps, size=config.icon, transforms=ATLAS_TRANSFORMS, progress=False)
    start = time.perf_counter()
    ns.render_units(model, units, render)
    baseline = time.perf_counter() - start
    result = {
        "model": model.name, "layer": atlas.layer, "config": config, "cells": len(atlas), "samples": atlas.samples,
        "layout": atlas.layout, "diagonal_dominance": round(atlas.diagonal_dominance(), 4),
        "atlas_s": round(total, 1), "stages_s": {k: round(v, 1) for k, v in atlas.timing.items()},
        "collect_without_attributions_s": round(plain_collect, 1),
        "baseline": f"render_units of {len(units)} channels of {atlas.layer}, {config.icon} px, {config.steps} steps, "
                    "atlas transforms",
        "baseline_s": round(baseline, 1),
        "icons_vs_baseline": round(atlas.timing["icons_s"] / baseline, 3),
        "atlas_vs_baseline": round(total / baseline, 3),
        "torch_threads": args.threads, "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "torch": torch.__version__,
    }
    write_json(Path(args.out), result)
    print(result, flush=True)
    print(args.out)


if __name__ == "__main__":
    main()
