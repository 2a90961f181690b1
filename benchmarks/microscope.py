"""Gallery throughput: the README's main job (``neuronscope microscope``, defaults) against a
reference render in the same run, units per minute for ``--all`` on one layer, and where the time
goes (examples pass, weights, rendering, class views, photo pages, pages).

    .venv/bin/python benchmarks/microscope.py [--layer blocks.2.1] [--skip-all] [--before REV] [--out benchmarks/results/microscope.json]

The reference workload is ``neuronscope render-layer efficientnet_lite0 blocks.4.1.bn1 --channels
0:16 --steps 256 --size 128``; both it and the main job run through the CLI entry point exactly as
a user types them, so the ratio main job / reference compares machines fairly (minutes do not).
Every build starts from an empty folder, on the CPU with the thread count given. ``--before REV``
also runs both commands with the code of git revision REV (a temporary worktree), in the same run,
so a change's effect on the ratio is measured on the same machine in the same minutes. A
measurement, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import machine, worktree

import neuronscope as ns
from neuronscope.gallery import GalleryConfig, build_gallery
from neuronscope.manifest import write_json


def measure(name: str, config: GalleryConfig, model: ns.Model) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="microscope-bench-"))
    try:
        start = time.perf_counter()
        summary = build_gallery(model, config, folder)
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    per_unit = summary.timing.get("render_s", 0.0) / max(1, summary.rendered)
    return {"build": name, "units": summary.rendered, "photos": summary.photos, "pages": summary.pages,
            "total_s": round(total, 1), "units_per_minute": round(60 * summary.rendered / total, 1),
            "render_s_per_unit": round(per_unit, 2),
            "time_s": {k: round(v, 2) for k, v in sorted(summary.timing.items())},
            "time_share": {k: round(v / total, 3) for k, v in sorted(summary.timing.items())}}


REFERENCE = ["render-layer", "efficientnet_lite0", "blocks.4.1.bn1", "--channels", "0:16", "--steps", "256",
             "--size", "128", "--no-progress"]


RUNNER = "import sys, torch; torch.set_num_threads({threads}); from neuronscope.cli.main import main; sys.exit(main({argv!r}))"


def cli_run(name: str, argv: list[str], threads: int, src: Path | None = None) -> float:
    """Seconds the ``neuronscope`` command ``argv`` takes in a fresh Python process, as a user runs
    it (it must succeed); ``src``: the package source to import (default: the installed one)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    start = time.perf_counter()
    code = subprocess.run([sys.executable, "-c", RUNNER.format(threads=threads, argv=argv)], env=env).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{name} failed with exit code {code}")
    return seconds


def main_job_vs_reference(threads: int, src: Path | None = None) -> dict:
    """The reference, the README command, and the reference again (this machine's speed drifts by
    up to a third within minutes: the ratio uses the mean of the two), each in a fresh folder."""
    folder = Path(tempfile.mkdtemp(prefix="microscope-bench-"))
    try:
        first = cli_run("reference", [*REFERENCE, "-o", str(folder / "reference.png")], threads, src)
        main_s = cli_run("main job", ["microscope", "--out", str(folder / "gallery"), "--no-progress"], threads, src)
        second = cli_run("reference", [*REFERENCE, "-o", str(folder / "reference.png")], threads, src)
        manifest = json.loads((folder / "gallery" / "efficientnet_lite0" / "manifest.json").read_text())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    run = manifest["runs"][-1]
    reference_s = (first + second) / 2
    return {"main_job": "neuronscope microscope", "reference": "neuronscope " + " ".join(REFERENCE),
            "main_job_s": round(main_s, 1), "reference_s": round(reference_s, 1),
            "reference_runs_s": [round(first, 1), round(second, 1)],
            "ratio_main_job_over_reference": round(main_s / reference_s, 2),
            "main_job_units": run.get("rendered"), "main_job_photos": run.get("photos"),
            "main_job_time_s": {k: round(v, 1) for k, v in sorted((run.get("timing") or {}).items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", default="blocks.2.1", help="the layer of the --all build")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-all", action="store_true", help="only the main job and the reference")
    parser.add_argument("--before", default=None, metavar="REV",
                        help="also measure the code of this git revision, in the same run (before, then now)")
    parser.add_argument("--out", default="benchmarks/results/microscope.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = {"model": "efficientnet_lite0", "threads": args.threads, "started_utc": started, **machine(),
              "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    if args.before:
        with worktree(args.before) as tree:
            report["before"] = {"revision": args.before, **main_job_vs_reference(args.threads, tree / "src")}
    report["main_job_vs_reference"] = main_job_vs_reference(args.threads)
    if args.before:
        report["main_job_speedup_over_before"] = round(
            report["before"]["main_job_s"] / report["main_job_vs_reference"]["main_job_s"], 2)
    if not args.skip_all:
        model = ns.load("efficientnet_lite0")
        every = GalleryConfig(layers=(args.layer,), units=None, photos=(), progress=False)
        report["builds"] = [measure(f"--all --layers {args.layer} --photos ''", every, model)]
    write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
