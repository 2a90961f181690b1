"""Held-out check, as a user would do it: 8 classes named in no test, rendered with the CLI's
defaults on Lite0 and classified with ``neuronscope classify``'s defaults (centre crop) by Lite0,
Lite1 and Lite2; top-1 hits per model, and the same with ``--whole``.

    .venv/bin/python benchmarks/heldout.py [--out benchmarks/results/heldout.json]

Every step runs the ``neuronscope`` command line in a subprocess, exactly as typed. A measurement,
not a test (the tests use other classes).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuronscope.manifest import write_json

CLASSES = ["ostrich", "jellyfish", "zebra", "pineapple", "lemon", "castle", "pretzel", "umbrella"]
MODELS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
CLI = [sys.executable, "-m", "neuronscope"]


def top1(model: str, images: list[Path], whole: bool) -> list[str]:
    """The top-1 label ``neuronscope classify`` prints for each image."""
    command = [*CLI, "classify", *map(str, images), "--model", model, "--top", "1"] + (["--whole"] if whole else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    # per image: a header line, a table header, one row "1  label...  index  probability"
    rows = [line.split() for line in out if line.strip().startswith("1 ")]
    return [" ".join(row[1:-2]) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/heldout.json")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="heldout-"))
    start = time.perf_counter()
    subprocess.run([*CLI, "render", "efficientnet_lite0", *[f"logits:{c}" for c in CLASSES], "-o", str(folder),
                    "--no-progress"], check=True, capture_output=True)
    render_s = time.perf_counter() - start
    images = sorted(folder.glob("0*.png"))
    result = {"classes": CLASSES, "render_s": round(render_s, 1), "command": "neuronscope render efficientnet_lite0 "
              + " ".join(f"logits:{c}" for c in CLASSES) + " -o DIR", "models": {}}
    for model in MODELS:
        for whole in (False, True):
            labels = top1(model, images, whole)
            hits = sum(label == c for label, c in zip(labels, CLASSES))
            key = "whole" if whole else "defaults"
            result["models"].setdefault(model, {})[key] = {"top1": hits, "of": len(CLASSES), "labels": labels}
            print(f"{model} ({key}): {hits}/{len(CLASSES)}  {labels}", flush=True)
    write_json(Path(args.out), result)
    print(json.dumps({m: v["defaults"]["top1"] for m, v in result["models"].items()}), args.out)


if __name__ == "__main__":
    main()
