"""The cost of a gallery's photo pages, with the interactive Building Blocks interface against the
code before it (``--before``, a temporary git worktree), in one run.

    .venv/bin/python benchmarks/photo_page.py [--before ccf42f5] [--photos chelsea coffee astronaut] [--repeats 2]

Each measurement is a fresh process that does what a gallery build does for its photo pages, on
Lite0's six gallery layers at the gallery's default settings: read each photo once, render the
semantic dictionary icons (cold cache), then make each page's pictures and data
(``photo_views``). Before and after alternate, ``--repeats`` times each; the JSON in
``benchmarks/results/photo_page.json`` keeps every time and the ratio of the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import machine, worktree

LAYERS = ["blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2", "blocks.5.3", "blocks.6.0"]

MEASURE = """
import json, sys, tempfile, time
from pathlib import Path
import torch
import neuronscope as ns
from neuronscope.data.photos import load_image, photo_path
from neuronscope.gallery import GalleryConfig
from neuronscope.gallery.photo_views import photo_views, prefetch_icons, read_photo
torch.manual_seed(0)
photos, layers = sys.argv[1].split(","), sys.argv[2].split(",")
model = ns.load("efficientnet_lite0")
config = GalleryConfig(progress=False)
folder = Path(tempfile.mkdtemp())
started = time.perf_counter()
pictures = {name: load_image(photo_path(name)) for name in photos}
readings = {name: read_photo(model, pictures[name], layers) for name in photos}
prefetch_icons(model, list(readings.values()), layers, config, folder / "icons")
for name in photos:
    photo_views(model, pictures[name], readings[name], layers, config, folder / name, folder / "icons")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def measure(src: Path, photos: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", MEASURE, ",".join(photos), ",".join(LAYERS)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="ccf42f5", metavar="REV", help="the code before the interface (default ccf42f5)")
    parser.add_argument("--photos", nargs="+", default=["chelsea", "coffee", "astronaut"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "photo_page.json"))
    args = parser.parse_args(argv)
    report = {"machine": machine(), "model": "efficientnet_lite0", "layers": LAYERS, "photos": args.photos,
              "before": {"revision": args.before, "seconds": []}, "after": {"seconds": []}}
    here = Path(__file__).resolve().parents[1] / "src"
    with worktree(args.before) as tree:
        for _ in range(args.repeats):
            report["before"]["seconds"].append(round(measure(tree / "src", args.photos), 2))
            report["after"]["seconds"].append(round(measure(here, args.photos), 2))
            print(json.dumps(report), file=sys.stderr)
    before, after = statistics.median(report["before"]["seconds"]), statistics.median(report["after"]["seconds"])
    report["ratio"] = round(after / before, 3)
    report["per_photo_seconds"] = {"before": round(before / len(args.photos), 2), "after": round(after / len(args.photos), 2)}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    tempfile.tempdir = None
    main()
