"""Time to quality: how long each engine takes to make a picture as good as Lucent's best.

    bash benchmarks/setup_lucent.sh                       # once: the Lucent venv
    .venv/bin/python benchmarks/time_to_quality.py        # full run, about 45 min on 2 cores
    .venv/bin/python benchmarks/time_to_quality.py --quick --out /tmp/ttq.json   # smoke check

Items: 16 channels (4 in each of blocks.2.1, blocks.3.2, blocks.4.2, blocks.5.3 of
EfficientNet-Lite0, 128 px images) and 8 classes (224 px, the model's input). Methods, each in its
own fresh subprocess with ``torch.set_num_threads(threads)``:

* Lucent 0.1.8 as users run it (``render_vis``, ``param.image``, ``standard_transforms``, Adam 0.05,
  the Lite0 normalisation; weights trainable as a user's loaded model has them; see
  ``render.py``): 512 steps, the images kept at every checkpoint (``thresholds``); channels in
  one batch of 16, classes in one batch of 8;
* neuronscope, one entry per variant (``VARIANTS``): the defaults of ``render_units`` and the
  levers under test (learning-rate schedule and step budget). A variant with a constant learning
  rate runs once to 512 steps with snapshots at the checkpoints (a shorter run is the same run
  stopped earlier); a scheduled one runs once per step budget, since its rates depend on it.

Quality = the objective on the untransformed image (a channel's spatial mean at 128 px, a class
logit at 224 px), evaluated afterwards by ``ns.capture`` on the kept images. Target of an item =
90 % of the value Lucent reaches in 512 steps. Time of an item to the target = the first
checkpoint (or budget) whose image reaches it, times the method's measured seconds per image-step
(wall time of its batched run / steps / batch). The ratios are Lucent's summed time over ours;
items no method reaches are listed. Also recorded per variant: values at 512 (or the largest
budget) relative to Lucent's, and crop/rescale robustness of the final images
(``featurevis.robustness``). A measurement, never a test: nothing here asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import machine, source_state, synchronize

HERE = Path(__file__).resolve().parent
LUCENT_PYTHON = HERE / ".venv-lucent" / "bin" / "python"
MODEL = "efficientnet_lite0"
CHANNELS = [(layer, c) for layer in ("blocks.2.1", "blocks.3.2", "blocks.4.2", "blocks.5.3") for c in (3, 7, 11, 15)]
CLASSES = ["goldfish", "flamingo", "tabby", "monarch", "balloon", "golf ball", "orange", "volcano"]
CHECKPOINTS = (8, 16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 448, 512)
TARGET = 0.9
GROUPS = {"channels": 128, "classes": 224}
"""Each group's image side."""
VARIANTS = {
    "defaults": {},
    "cosine_lr0.05": {"schedule": "cosine", "budgets": (32, 64, 128, 256)},
    "cosine_lr0.1": {"schedule": "cosine", "lr": 0.1, "budgets": (32, 64, 128, 256)},
    "cosine_lr0.2": {"schedule": "cosine", "lr": 0.2, "budgets": (32, 64, 128, 256)},
    "views2": {"views": 2, "max_steps": 256},
}
"""neuronscope variants: RenderConfig settings, the step budgets of a scheduled one, and
``max_steps`` where a constant-rate curve stops before 512."""


def units_of(group: str) -> list[str]:
    return [f"{layer}:{c}" for layer, c in CHANNELS] if group == "channels" else [f"logits:{name}" for name in CLASSES]


# --------------------------------------------------------------------------- workers

def worker_lucent(spec: dict, workdir: Path) -> dict:
    """Lucent's render_vis, images kept at every checkpoint."""
    import numpy as np
    import torch
    from lucent.optvis import objectives, param, render, transform

    import neuronscope as ns

    wrapped = ns.load(MODEL, device=spec["device"])
    model = wrapped.module.requires_grad_(True)  # as a user's loaded model has them
    classes = [wrapped.class_index(name) for name in CLASSES]

    def lite0_norm(x):  # the model's own preprocessing, where Lucent puts its ImageNet one
        return (255 * x - 127) / 128

    report = {}
    for group, size in GROUPS.items():
        targets = ([(layer.replace(".", "_"), c) for layer, c in CHANNELS] if group == "channels"
                   else [("classifier", k) for k in classes])
        torch.manual_seed(0)
        np.random.seed(0)
        objective = sum(objectives.channel(layer, c, batch=i) for i, (layer, c) in enumerate(targets))
        thresholds = tuple(k for k in spec["checkpoints"] if k <= spec["steps"])
        start = time.perf_counter()
        images = render.render_vis(model, objective, param_f=lambda: param.image(size, batch=len(targets)),
                                   transforms=transform.standard_transforms + [lite0_norm], thresholds=thresholds,
                                   preprocess=False, progress=False, show_image=False)
        synchronize(spec["device"])
        wall = time.perf_counter() - start
        for m in model.modules():  # render_vis leaves its hooks behind
            m._forward_hooks.clear()
        np.save(workdir / f"lucent_{group}.npy", np.stack(images).transpose(0, 1, 4, 2, 3).astype(np.float16))
        report[group] = {"wall_s": round(wall, 2), "steps": spec["steps"], "batch": len(targets),
                         "checkpoints": list(thresholds)}
    return report


def worker_ours(spec: dict, workdir: Path) -> dict:
    """neuronscope's render_units with one variant's settings."""
    import numpy as np

    import neuronscope as ns
    from neuronscope.featurevis.render import RenderConfig

    model = ns.load(MODEL, device=spec["device"])
    model.layers  # the one-time probe forward is not part of the measurement
    variant = dict(VARIANTS[spec["variant"]])
    budgets = variant.pop("budgets", None)
    steps_cap = min(spec["steps"], variant.pop("max_steps", spec["steps"]))
    report = {}
    for group in GROUPS:
        units = units_of(group)
        ns.render_units(model, units, RenderConfig(steps=2, seed=0, progress=False, **variant))  # warm-up
        runs = []
        if budgets is None:
            kept = tuple(k for k in spec["checkpoints"] if k <= steps_cap)
            plan = [(steps_cap, kept)]
        else:
            plan = [(b, (b,)) for b in budgets if b <= spec["steps"]] or [(spec["steps"], (spec["steps"],))]
        stacks = []
        for steps, kept in plan:
            config = RenderConfig(steps=steps, seed=0, progress=False, snapshots=kept, **variant)
            start = time.perf_counter()
            result = ns.render_units(model, units, config)
            synchronize(spec["device"])
            wall = time.perf_counter() - start
            stacks += [result.snapshots[k].numpy() for k in kept]
            runs.append({"steps": steps, "wall_s": round(wall, 2), "batch_size": result.manifest.get("batch_size")})
        np.save(workdir / f"ours_{spec['variant']}_{group}.npy", np.stack(stacks).astype(np.float16))
        report[group] = {"runs": runs, "checkpoints": [k for _, kept in plan for k in kept],
                         "scheduled": budgets is not None, "batch": len(units)}
    return report


WORKERS = {"lucent": worker_lucent, "ours": worker_ours}


# --------------------------------------------------------------------------- evaluation (parent)

def evaluate(model, group: str, stack) -> list[list[float]]:
    """(checkpoints, items) objective values of the kept images, untransformed."""
    import torch

    import neuronscope as ns
    from neuronscope.units import parse_unit, unit_score

    units = [parse_unit(model, u) for u in units_of(group)]
    layers = sorted({u.layer for u in units})
    values = []
    with torch.no_grad(), ns.capture(model, layers) as cap:
        for images in stack:
            acts = cap(torch.from_numpy(images.astype("float32")))
            values.append([float(unit_score(acts, u, i)) for i, u in enumerate(units)])
    return values


def robustness(model, group: str, images) -> list[float]:
    import torch

    from neuronscope.featurevis.robustness import crop_robustness

    return [round(r, 3) for r in crop_robustness(model, torch.from_numpy(images.astype("float32")), units_of(group))]


def time_to_target(values: list[list[float]], checkpoints: list[int], target: list[float],
                   s_per_image_step: dict[int, float]) -> list[float | None]:
    """Per item, seconds to its target: the first checkpoint (or budget) reaching it."""
    times = []
    for i, goal in enumerate(target):
        reached = [k for row, k in zip(values, checkpoints) if row[i] >= goal]
        times.append(None if not reached or goal <= 0 else round(min(reached) * s_per_image_step[min(reached)], 3))
    return times


def settled(values: list[list[float]], checkpoints: list[int], fraction: float) -> list[int | None]:
    """Per item, the first checkpoint from which its value stays at or above ``fraction`` of its
    final value (None: a non-positive final value)."""
    out = []
    for i in range(len(values[0])):
        final = values[-1][i]
        if final <= 0:
            out.append(None)
            continue
        below = [k for row, k in zip(values, checkpoints) if row[i] < fraction * final]
        later = [k for k in checkpoints if not below or k > max(below)]
        out.append(later[0] if later else checkpoints[-1])
    return out


def summarize(raw: dict, workdir: Path, threads: int) -> dict:
    import numpy as np
    import torch

    import neuronscope as ns

    torch.set_num_threads(threads)
    model = ns.load(MODEL)
    report = {}
    for group in GROUPS:
        lucent = raw["lucent"][group]
        stack = np.load(workdir / f"lucent_{group}.npy")
        lucent_values = evaluate(model, group, stack)
        lucent_step = lucent["wall_s"] / lucent["steps"] / lucent["batch"]
        best = lucent_values[-1]
        target = [TARGET * v for v in best]
        entries = {"lucent": {"s_per_image_step": round(lucent_step, 4), "checkpoints": lucent["checkpoints"],
                              "values": [[round(v, 3) for v in row] for row in lucent_values],
                              "robustness": robustness(model, group, stack[-1])}}
        entries["lucent"]["time_to_target_s"] = time_to_target(
            lucent_values, lucent["checkpoints"], target, {k: lucent_step for k in lucent["checkpoints"]})
        for name in VARIANTS:
            ours = raw[f"ours_{name}"][group]
            stack = np.load(workdir / f"ours_{name}_{group}.npy")
            values = evaluate(model, group, stack)
            per_step = {}
            for run in ours["runs"]:
                seconds = run["wall_s"] / run["steps"] / ours["batch"]
                per_step.update({k: seconds for k in ours["checkpoints"] if not ours["scheduled"] or k == run["steps"]})
            entries[name] = {"s_per_image_step": {str(k): round(v, 4) for k, v in per_step.items()},
                             "checkpoints": ours["checkpoints"], "scheduled": ours["scheduled"],
                             "values": [[round(v, 3) for v in row] for row in values],
                             "final_over_lucent_512": [round(v / b, 3) if b > 0 else None for v, b in zip(values[-1], best)],
                             "robustness": robustness(model, group, stack[-1]),
                             "time_to_target_s": time_to_target(values, ours["checkpoints"], target,
                                                                per_step)}
            if not ours["scheduled"]:  # what stopping each item once it has plateaued could save
                entries[name]["steps_to_95pct_of_own_final"] = settled(values, ours["checkpoints"], 0.95)
        report[group] = {"units": units_of(group), "lucent_512": [round(v, 3) for v in best],
                         "target": f"{TARGET} x Lucent's value at 512 steps", **entries}
    report["ratios"] = ratios(report)
    return report


def ratios(report: dict) -> dict:
    """Lucent's summed time to target over each variant's, over the items both reach."""
    out = {}
    for name in VARIANTS:
        row = {}
        for group in GROUPS:
            ours, lucent = report[group][name]["time_to_target_s"], report[group]["lucent"]["time_to_target_s"]
            both = [(a, b) for a, b in zip(lucent, ours) if a is not None and b is not None]
            row[group] = {"lucent_over_ours": round(sum(a for a, _ in both) / sum(b for _, b in both), 2) if both else None,
                          "reached": sum(b is not None for b in ours), "of": len(ours),
                          "lucent_s": round(sum(a for a, _ in both), 1), "ours_s": round(sum(b for _, b in both), 1)}
        total_l = sum(r["lucent_s"] for r in row.values())
        total_o = sum(r["ours_s"] for r in row.values())
        row["all"] = {"lucent_over_ours": round(total_l / total_o, 2) if total_o else None}
        out[name] = row
    return out


# --------------------------------------------------------------------------- parent

def spawn(name: str, python: Path | str, spec: dict, workdir: Path) -> dict:
    done = workdir / f"{name}.json"
    if done.exists():  # a --keep folder of an interrupted or earlier run: what is there is reused
        print(f"time_to_quality: {name} reused from {workdir}", file=sys.stderr, flush=True)
        return json.loads(done.read_text())
    print(f"time_to_quality: {name} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", spec["worker"], "--spec",
                           json.dumps(spec), "--workdir", str(workdir)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    report = json.loads((workdir / f"{name}.json").read_text())
    print(f"time_to_quality: {name} done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return report


def gpu_name(device: str) -> str | None:
    import torch

    return torch.cuda.get_device_name(device) if device.startswith("cuda") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where every method runs")
    parser.add_argument("--lucent-python", default=str(LUCENT_PYTHON),
                        help="an interpreter that imports Lucent 0.1.8 (default: benchmarks/.venv-lucent, built if missing)")
    parser.add_argument("--quick", action="store_true", help="16 steps: a smoke check")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="neuronscope variants to run")
    parser.add_argument("--out", default=str(HERE / "results" / "time_to_quality.json"))
    parser.add_argument("--keep", default=None, help="keep the workers' images and reports in this folder; "
                        "methods already there are reused (a killed run resumes; a new variant runs alone)")
    parser.add_argument("--from", dest="again", default=None, metavar="DIR",
                        help="no runs: summarize again the images and reports kept in DIR by --keep")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from neuronscope.manifest import write_json  # atomic; also in the Lucent venv, whose workers import neuronscope

    if args.worker:
        import torch

        spec = json.loads(args.spec)
        torch.set_num_threads(spec["threads"])
        name = "lucent" if args.worker == "lucent" else f"ours_{spec['variant']}"
        report = WORKERS[args.worker](spec, Path(args.workdir))
        write_json(Path(args.workdir) / f"{name}.json", report)  # atomic: --keep reuses what exists
        return

    chosen = args.variants.split(",")
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}: choose from {', '.join(VARIANTS)}")
    for name in set(VARIANTS) - set(chosen):
        del VARIANTS[name]
    if args.lucent_python == str(LUCENT_PYTHON) and not LUCENT_PYTHON.exists():
        subprocess.run(["bash", str(HERE / "setup_lucent.sh")], check=True)
    steps = 16 if args.quick else 512
    base = {"threads": args.threads, "device": args.device, "steps": steps, "checkpoints": [k for k in CHECKPOINTS if k <= steps] or [steps]}
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ttq-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    facts = machine()
    if args.again:
        workdir = Path(args.again)
        raw = {path.stem: json.loads(path.read_text()) for path in workdir.glob("*.json")}
    else:
        raw = {"lucent": spawn("lucent", args.lucent_python, {**base, "worker": "lucent"}, workdir)}
        for name in VARIANTS:
            raw[f"ours_{name}"] = spawn(f"ours_{name}", sys.executable, {**base, "worker": "ours", "variant": name},
                                        workdir)
    report = {"benchmark": "time_to_quality", "started_utc": started, **facts, "threads": args.threads,
              "device": args.device, "gpu": gpu_name(args.device), "neuronscope_source": source_state(),
              "model": MODEL, "steps_lucent": steps, "variants": {k: {**v, "budgets": list(v.get("budgets", ()))}
                                                                  for k, v in VARIANTS.items()},
              "runs": raw, **summarize(raw, workdir, args.threads), "wall_s": round(time.perf_counter() - t0, 1)}
    write_json(Path(args.out), report)
    print(json.dumps(report["ratios"], indent=1))


if __name__ == "__main__":
    main()
