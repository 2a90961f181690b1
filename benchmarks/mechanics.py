"""What ``microscope --mechanics`` adds: the decompositions and polysemanticity against the units'
own feature visualizations, in one build (the default layers and units of Lite0).

    .venv/bin/python benchmarks/mechanics.py [--units 6] [--out benchmarks/results/mechanics.json]

The build's own timing splits rendering (the units' feature visualizations) from mechanics
(decomposed feature visualizations of every rendered unit, then each layer's polysemanticity),
so the ratio is measured in the same run on the same machine. Photo pages are left out.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

import neuronscope as ns
from neuronscope.gallery import GalleryConfig, build_gallery
from neuronscope.manifest import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=6)
    parser.add_argument("--out", default="benchmarks/results/mechanics.json")
    args = parser.parse_args()
    model = ns.load("efficientnet_lite0")
    config = GalleryConfig(units=args.units, photos=(), mechanics=True, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        summary = build_gallery(model, config, folder)
        total = time.perf_counter() - start
        data = __import__("json").loads((summary.folder / "manifest.json").read_text())
    timing = {k: round(v, 1) for k, v in summary.timing.items()}
    records = [u["decomposition"] for u in data["units"].values() if "decomposition" in u]
    report = {
        "model": model.name, "units": summary.rendered, "total_s": round(total, 1), "timing": timing,
        "mechanics_over_render": round(summary.timing["mechanics_s"] / summary.timing["render_s"], 3),
        "cells_rendered": sum(r["rendered"] for r in records), "cells": sum(r["cells"] for r in records),
        "decompositions": len(records),
        "polysemanticity": {layer: record.get("polysemanticity") for layer, record in data["layers"].items()},
        "versions": {"torch": torch.__version__, "neuronscope": ns.__version__}, "threads": torch.get_num_threads(),
    }
    write_json(args.out, report)
    print({k: v for k, v in report.items() if k != "polysemanticity"})


if __name__ == "__main__":
    main()
