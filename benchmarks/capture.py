"""Full forward vs a forward truncated after `blocks.2`, side by side in one run.

    .venv/bin/python benchmarks/capture.py [--repeats 30] [--batch 1 8] [--out benchmarks/results/capture.json]

Times are medians of interleaved repeats (after warm-up), in milliseconds, on the CPU with the
thread count given. A measurement, not a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import neuronscope as ns


def timed(fn, repeats: int) -> list[float]:
    return [_once(fn) for _ in range(repeats)]


def _once(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bench(model: ns.Model, batch: int, repeats: int, layer: str) -> dict:
    x = torch.rand(batch, 3, *model.input_size)

    def plain():  # the bare module, no capture at all
        model.module(model.normalize(x))

    def full():
        with ns.capture(model, [layer], stop_early=False) as cap:
            cap(x)

    def truncated():
        with ns.capture(model, [layer]) as cap:
            cap(x)

    cases = {"plain_module_forward": plain, "capture_full_forward": full, f"capture_truncated_after_{layer}": truncated}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    with torch.no_grad():
        for fn in cases.values():
            for _ in range(3):
                fn()
        for _ in range(repeats):  # interleave so drift on a noisy machine hits every case alike
            for name, fn in cases.items():
                samples[name].append(_once(fn))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    full_ms, cut_ms = medians["capture_full_forward"], medians[f"capture_truncated_after_{layer}"]
    return {
        "batch": batch,
        "input_size": list(model.input_size),
        "median_ms": {k: round(v, 3) for k, v in medians.items()},
        "min_ms": {k: round(min(v), 3) for k, v in samples.items()},
        "truncated_over_full": round(cut_ms / full_ms, 3),
        "full_over_truncated_speedup": round(full_ms / cut_ms, 2),
        "capture_overhead_over_plain": round(full_ms / medians["plain_module_forward"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layer", default="blocks.2")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "capture.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load(args.model)
    model.layers  # the one-time probe forward is not part of the measurement
    report = {
        "benchmark": "capture: full forward vs truncated forward",
        "model": args.model,
        "layer": args.layer,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "runs": [bench(model, b, args.repeats, args.layer) for b in args.batch],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
