"""How often a gallery build reads each image of its source, and how long it takes, before and
after the one-pass change, in one run on one machine.

    .venv/bin/python benchmarks/one_pass.py [--before db96e07] [--images 330] [--out benchmarks/results/one_pass.json]

The workload is the issue's: ``neuronscope microscope efficientnet_lite0 efficientnet_lite1 --atlas
--source FOLDER`` over a folder of JPEG files (the bundled photos' crops, written once), from an
empty output folder, in a fresh process, once with the code of ``--before`` (a temporary git
worktree) and once with this checkout. Each build runs under ``strace -f --seccomp-bpf -e
trace=openat`` (only ``openat`` stops the process, so the overhead is small and the same for
both); every successful open of a file of FOLDER is counted, in the build and in its decoding
worker processes. A measurement, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from common import machine, worktree
from PIL import Image

from neuronscope.data.sources import bundled_source
from neuronscope.manifest import write_json

COMMAND = ["microscope", "efficientnet_lite0", "efficientnet_lite1", "--atlas", "--no-progress"]
RUNNER = "import sys, torch; torch.set_num_threads({threads}); from neuronscope.cli.main import main; sys.exit(main({argv!r}))"
OPENAT = re.compile(r'openat\([^,]+, "([^"]+)", ([^)]*)\) = (\d+)')


def make_folder(folder: Path, count: int) -> Path:
    """``count`` JPEG files: the bundled crops (330), repeated with mirrored copies if more are asked."""
    folder.mkdir(parents=True, exist_ok=True)
    source = bundled_source()
    keys = list(source.keys())
    for i in range(count):
        image = source.load(keys[i % len(keys)])
        if (i // len(keys)) % 2:
            image = image[:, ::-1]
        array = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(array).save(folder / f"{i:05d}.jpg", quality=90)
    return folder


def build(name: str, folder: Path, threads: int, src: Path | None) -> dict:
    """One build of ``COMMAND`` over ``folder`` under strace: its seconds and opens per image file."""
    work = Path(tempfile.mkdtemp(prefix=f"one-pass-{name}-"))
    trace = work / "openat.trace"
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    argv = [*COMMAND, "--source", str(folder), "--out", str(work / "gallery")]
    start = time.perf_counter()
    code = subprocess.run(["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=openat", "-o", str(trace),
                           sys.executable, "-c", RUNNER.format(threads=threads, argv=argv)], env=env).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the {name} build failed with exit code {code}")
    opens = Counter()
    prefix = str(folder.resolve()) + "/"
    for line in trace.read_text().splitlines():
        found = OPENAT.search(line)
        if found and found.group(1).startswith(prefix) and "O_DIRECTORY" not in found.group(2):
            opens[found.group(1)[len(prefix):]] += 1
    files = sorted(p.name for p in folder.iterdir())
    counts = [opens.get(f, 0) for f in files]
    timing = {}
    for model in ("efficientnet_lite0", "efficientnet_lite1"):
        manifest = json.loads((work / "gallery" / model / "manifest.json").read_text())
        timing[model] = {k: round(v, 1) for k, v in sorted((manifest["runs"][-1].get("timing") or {}).items())}
    shutil.rmtree(work, ignore_errors=True)
    return {"code": name, "seconds": round(seconds, 1), "files": len(files), "opens": sum(counts),
            "opens_per_file": {"min": min(counts), "median": float(np.median(counts)), "max": max(counts),
                               "mean": round(float(np.mean(counts)), 2)},
            "files_by_opens": {str(k): v for k, v in sorted(Counter(counts).items())},
            "timing_s": timing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="db96e07", metavar="REV", help="the code before the change (default db96e07)")
    parser.add_argument("--images", type=int, default=330, help="JPEG files in the source folder (at least 200)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/one_pass.json")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("needs strace (Debian: apt-get install strace)")
    report = {"command": "neuronscope " + " ".join(COMMAND) + " --source FOLDER", "images": args.images,
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **machine(),
              "threads": args.threads, "torch": torch.__version__}
    with tempfile.TemporaryDirectory(prefix="one-pass-images-") as images:
        folder = make_folder(Path(images) / "images", args.images)
        with worktree(args.before) as tree:
            report["before"] = {"revision": args.before, **build("before", folder, args.threads, tree / "src")}
        report["after"] = {"revision": _head(), **build("after", folder, args.threads, None)}
    report["speedup"] = round(report["before"]["seconds"] / report["after"]["seconds"], 2)
    write_json(args.out, report)
    print(json.dumps(report, indent=2))


def _head() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return found.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


if __name__ == "__main__":
    main()
