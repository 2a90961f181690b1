"""Gallery throughput: units per minute for the default build and for ``--all`` on one layer,
and where the time goes (examples pass, weights, rendering, class views, photo pages, pages).

    .venv/bin/python benchmarks/microscope.py [--layer blocks.2.1] [--out benchmarks/results/microscope.json]

Both builds start from an empty folder in one run, on the CPU with the thread count given. A
measurement, not a test: nothing here asserts a speed. The second build (``--all`` on one layer)
reuses nothing from the first (its own folder), so its numbers stand alone.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.gallery import GalleryConfig, build_gallery


def measure(name: str, config: GalleryConfig, model: ns.Model) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="microscope-bench-"))
    try:
        start = time.perf_counter()
        summary = build_gallery(folder, config, model=model)
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_unit = summary.timing.get("render_s", 0.0) / max(1, summary.rendered)
    return {"build": name, "units": summary.rendered, "photos": summary.photos, "pages": summary.pages,
            "total_s": round(total, 1), "units_per_minute": round(60 * summary.rendered / total, 1),
            "render_s_per_unit": round(per_unit, 2),
            "time_s": {k: round(v, 2) for k, v in sorted(summary.timing.items())},
            "time_share": {k: round(v / total, 3) for k, v in sorted(summary.timing.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", default="blocks.2.1", help="the layer of the --all build")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/microscope.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    default = GalleryConfig(progress=False)
    every = GalleryConfig(layers=(args.layer,), units=None, photos=(), progress=False)
    results = [measure("default (neuronscope microscope)", default, model),
               measure(f"--all --layers {args.layer} --photos ''", every, model)]
    report = {"model": model.name, "threads": args.threads, "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "builds": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
