"""Feature visualization speed, neuronscope vs Lucent 0.1.8, side by side in one run.

    bash benchmarks/setup_lucent.sh                  # once: the Lucent venv (render.py also calls it)
    .venv/bin/python benchmarks/render.py            # full run, ~10 min on 2 cores
    .venv/bin/python benchmarks/render.py --quick    # smoke check (8 steps), writes nothing unless --out

Renders 16 channels (7..22) of ``blocks.4.1.bn1`` of EfficientNet-Lite0 (256 Adam steps, 128 px
images) with

* neuronscope: ``ns.render_units(model, units, RenderConfig(steps, size, seed=0))``;
* Lucent 0.1.8 as users run it today: ``render_vis`` on the same model object (Lucent's name of
  the layer is ``blocks_4_1_bn1``), two calls of batch 8 with
  ``sum(objectives.channel(layer, c, batch=i))``, ``param.image(size, batch=8)``,
  ``standard_transforms`` + the Lite0 normalisation ``(255x - 127) / 128`` (``preprocess=False``:
  Lucent's own preprocessing is torchvision's ImageNet mean/std, wrong for Lite0),
  ``thresholds=(steps,)``, weights left trainable as a user's loaded model has them. When the Lucent
  venv cannot be built, ``benchmarks/lucent_like.py`` (a faithful re-implementation) runs instead
  and the JSON's ``baseline`` says so;
* a floor: the bare forward+backward of Lite0 truncated after the layer, at the input shape(s)
  neuronscope feeds the model, times the steps; once for the module as loaded ("plain") and once
  with BatchNorm folded and channels-last memory (done here, independently of neuronscope's own
  fast path, which uses the same two tricks).

Each method runs in its own fresh subprocess (``torch.set_num_threads``, one untimed short
warm-up, then timed repeats), so ``ru_maxrss`` of that process is its peak RSS. Afterwards
neuronscope evaluates every method's final images (128 px, no transforms, ``ns.capture``) and
reports each target channel's mean activation, so that the speeds compare equal work.

A measurement, never a test: nothing here asserts a speed. Times are wall clock on a shared
machine; each worker also reports its CPU time / wall time (about the thread count when nothing
else competes for the cores) and the load average, to tell a quiet run from a contended one.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import source_state, synchronize

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUCENT_VENV = HERE / ".venv-lucent"
LUCENT_PYTHON = LUCENT_VENV / "bin" / "python"
MODEL = "efficientnet_lite0"
LAYER = "blocks.4.1.bn1"
FIRST_CHANNEL = 7
LUCENT_BATCH = 8
DEFAULT_OUT = HERE / "results" / "render.json"


# --------------------------------------------------------------------------- helpers (any venv)

def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _usage() -> tuple[float, float, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


def _usage_since(before: tuple[float, float, int]) -> dict:
    """User and system CPU seconds and minor page faults since ``before`` (a ``_usage()``)."""
    user, system, faults = _usage()
    return {"user_s": round(user - before[0], 2), "sys_s": round(system - before[1], 2), "minor_faults": faults - before[2]}


def _summary(values: list[float], digits: int = 3) -> dict:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "all": [round(v, digits) for v in values]}


# --------------------------------------------------------------------------- workers

def worker_ours(spec: dict, workdir: Path) -> dict:
    import numpy as np
    import torch
    from torch import nn

    import neuronscope as ns
    from neuronscope.featurevis.render import RenderConfig

    model = ns.load(MODEL, device=spec["device"])
    model.layers  # the one-time probe forward is not part of the measurement
    rss_loaded = _rss_mb()
    units = [f"{LAYER}:{c}" for c in spec["channels"]]

    def config(steps: int) -> "RenderConfig":
        return RenderConfig(steps=steps, size=spec["size"], seed=0, progress=False)

    # Warm-up, untimed. A global pre-hook records what the engine feeds the network (the engine
    # may run a private copy of the module, e.g. with BatchNorm folded, so hook by class).
    seen: list[tuple[list[int], bool]] = []
    network = type(model.module)

    def record(module, inputs):
        if isinstance(module, network):
            seen.append((list(inputs[0].shape), torch.is_grad_enabled()))

    handle = nn.modules.module.register_module_forward_pre_hook(record)
    try:
        warm = ns.render_units(model, units, config(spec["warmup_steps"]))
    finally:
        handle.remove()
    grad_shapes = [shape for shape, grad in seen if grad]
    per_step = len(grad_shapes) / spec["warmup_steps"]
    if per_step != int(per_step):
        raise RuntimeError(f"could not tell the model inputs per step: {len(grad_shapes)} calls in {spec['warmup_steps']} steps")
    # A render makes one forward+backward per chunk and step: the first `per_step` distinct calls.
    chunk_shapes = _chunk_shapes(grad_shapes, spec["warmup_steps"])

    runs = []
    load0, cpu0, t_all = os.getloadavg()[0], _cpu_s(), time.perf_counter()
    for _ in range(spec["repeats"]):
        _seed(0)
        usage, start = _usage(), time.perf_counter()
        result = ns.render_units(model, units, config(spec["steps"]))
        synchronize(spec["device"])
        wall = time.perf_counter() - start
        runs.append({"wall_s": wall, "timing": {k: float(v) for k, v in result.timing.items()}, **_usage_since(usage)})
    wall_all = time.perf_counter() - t_all
    np.save(workdir / "ours_images.npy", result.images.numpy())
    return {
        "runs": runs,
        "values": [float(v) for v in result.values],
        "labels": list(result.labels),
        "warnings": list(result.warnings),
        "batch_size": result.manifest.get("batch_size"),
        "config": repr(config(spec["steps"])),
        "warmup_steps": spec["warmup_steps"],
        "warmup_total_s": float(warm.timing["total_s"]),
        "model_input_shapes_per_step": chunk_shapes,
        "rss_after_load_mb": round(rss_loaded, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cpu_over_wall": round((_cpu_s() - cpu0) / wall_all, 2),
        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def _chunk_shapes(grad_shapes: list[list[int]], steps: int) -> list[list[int]]:
    """The shapes of one step's model inputs: the renders run chunk after chunk, each for every step."""
    chunks = len(grad_shapes) // steps
    return [grad_shapes[k * steps] for k in range(chunks)]


def worker_floor(spec: dict, workdir: Path) -> dict:
    """Forward + backward (gradient w.r.t. the input only, weights frozen as ns.load leaves them)
    of the bare module, stopped by a hook right after the layer: what no engine can avoid."""
    import torch

    import neuronscope as ns

    plain = ns.load(MODEL).module
    variants = {"plain": (plain, torch.contiguous_format),
                "folded_channels_last": (_folded(ns.load(MODEL).module, spec["shapes"][0]), torch.channels_last)}
    report = {}
    for name, (module, memory_format) in variants.items():
        report[name] = _floor_times(module.to(spec["device"], memory_format=memory_format), memory_format, spec)
    report["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return report


def _folded(module, shape: list[int]):
    """``module`` with every BatchNorm2d that directly follows a Conv2d folded into it (the BN
    becomes an Identity, so hooking it still gives the normed output). Pairs are found from the
    execution order of a probe forward; independent of neuronscope's own folding."""
    import torch
    from torch import nn

    order = []
    handles = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in module.modules()
               if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    probe = torch.rand(1, *shape[1:])
    with torch.no_grad():
        before = module(probe)
    for h in handles:
        h.remove()
    parents = {child: (parent, name) for parent in module.modules() for name, child in parent.named_children()}
    with torch.no_grad():
        for conv, bn in zip(order, order[1:]):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)
            parent, name = parents[bn]
            setattr(parent, name, nn.Identity())
        after = module(probe)
    error = float((after - before).abs().max() / before.abs().max())
    if error > 1e-3:
        raise RuntimeError(f"folding changed the output by {error:.2g}")
    return module


def _floor_times(module, memory_format, spec: dict) -> dict:
    import torch

    target = dict(module.named_modules())[LAYER]
    channels = spec["channels"]

    class Stop(Exception):
        pass

    box = {}

    def hook(m, inputs, output):
        box["out"] = output
        raise Stop

    handle = target.register_forward_hook(hook)

    def step(x: torch.Tensor, chans: torch.Tensor) -> None:
        try:
            module(x)
        except Stop:
            pass
        out = box.pop("out")
        loss = out[torch.arange(len(chans)), chans].mean(dim=(1, 2)).sum()
        torch.autograd.grad(loss, x)

    per_shape = []
    offset = 0
    for shape in spec["shapes"]:
        _seed(0)
        x = (torch.rand(*shape) * 2 - 1).to(spec["device"]).contiguous(memory_format=memory_format).requires_grad_(True)
        chans = torch.tensor([channels[(offset + i) % len(channels)] for i in range(shape[0])], device=spec["device"])
        offset += shape[0]
        for _ in range(3):
            step(x, chans)
        times = []
        for _ in range(spec["calls"]):
            start = time.perf_counter()
            step(x, chans)
            synchronize(spec["device"])
            times.append(time.perf_counter() - start)
        per_shape.append({"shape": shape, "ms_per_call": _summary([t * 1000 for t in times], 2)})
    per_step_median = sum(p["ms_per_call"]["median"] for p in per_shape) / 1000
    per_step_min = sum(p["ms_per_call"]["min"] for p in per_shape) / 1000
    handle.remove()
    n = len(channels)
    return {
        "per_shape": per_shape,
        "s_per_vis": {"median": round(per_step_median * spec["steps"] / n, 3), "min": round(per_step_min * spec["steps"] / n, 3)},
    }


def worker_lucent(spec: dict, workdir: Path) -> dict:
    import numpy as np

    import neuronscope as ns

    if spec["baseline"] == "lucent":
        import lucent
        from lucent.optvis import objectives, param, render, transform

        render_vis, image, channel, standard = render.render_vis, param.image, objectives.channel, transform.standard_transforms
        get_model_layers = _lucent_get_model_layers()
        version = getattr(lucent, "__version__", None)
    else:
        sys.path.insert(0, str(HERE))
        import lucent_like

        render_vis, image, channel, standard = (lucent_like.render_vis, lucent_like.image, lucent_like.channel,
                                                lucent_like.standard_transforms)
        get_model_layers = None
        version = None

    wrapped = ns.load(MODEL, device=spec["device"])
    model = wrapped.module
    if spec["lucent_weights"] == "trainable":
        model.requires_grad_(True)  # as a model loaded by a user has them; ns.load freezes them
    lucent_layer = LAYER.replace(".", "_")
    if get_model_layers is not None and lucent_layer not in get_model_layers(model):
        raise RuntimeError(f"Lucent does not list {lucent_layer} for this model")
    mean, std = wrapped.mean, wrapped.std
    if not (all(abs(m - 127 / 255) < 1e-6 for m in mean) and all(abs(s - 128 / 255) < 1e-6 for s in std)):
        raise RuntimeError(f"unexpected normalisation of {MODEL}: mean {mean}, std {std}")

    def lite0_norm(x):  # the model's own preprocessing, where Lucent puts its ImageNet one
        return (255 * x - 127) / 128

    rss_loaded = _rss_mb()

    def call(chans: list[int], steps: int, seed: int):
        _seed(seed)
        objective = sum(channel(lucent_layer, c, batch=i) for i, c in enumerate(chans))
        usage, start = _usage(), time.perf_counter()
        images = render_vis(model, objective, param_f=lambda: image(spec["size"], batch=len(chans)),
                            transforms=standard + [lite0_norm], thresholds=(steps,), preprocess=False,
                            progress=False, show_image=False)
        synchronize(spec["device"])
        wall = time.perf_counter() - start
        used = _usage_since(usage)
        # render_vis leaves a hook on every module; clear them so the next call starts like a fresh
        # model (this favours Lucent a little: a notebook user accumulates them).
        hooks = sum(len(m._forward_hooks) for m in model.modules())
        for m in model.modules():
            m._forward_hooks.clear()
        return images[-1], wall, hooks, used

    chunks = [spec["channels"][i : i + LUCENT_BATCH] for i in range(0, len(spec["channels"]), LUCENT_BATCH)]
    _, warm_wall, hooks_left, _ = call(chunks[0], spec["warmup_steps"], 0)
    runs = []
    load0, cpu0, t_all = os.getloadavg()[0], _cpu_s(), time.perf_counter()
    for _ in range(spec["repeats"]):
        calls, usages, finals = [], [], []
        for k, chans in enumerate(chunks):
            final, wall, _, used = call(chans, spec["steps"], k)
            calls.append(wall)
            usages.append(used)
            finals.append(final)
        runs.append({"wall_s": sum(calls), "calls_s": calls,
                     **{key: sum(u[key] for u in usages) for key in ("user_s", "sys_s", "minor_faults")}})
    wall_all = time.perf_counter() - t_all
    np.save(workdir / "lucent_images.npy", np.concatenate(finals).transpose(0, 3, 1, 2).astype(np.float32))
    return {
        "runs": runs,
        "lucent_layer": lucent_layer,
        "lucent_version": version,
        "batch": LUCENT_BATCH,
        "weights": spec["lucent_weights"],
        "hooks_left_per_call": hooks_left,
        "warmup_wall_s": round(warm_wall, 2),
        "rss_after_load_mb": round(rss_loaded, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "cpu_over_wall": round((_cpu_s() - cpu0) / wall_all, 2),
        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
    }


def _lucent_get_model_layers():
    """Lucent's own ``lucent.modelzoo.util.get_model_layers``, loaded from its file: importing the
    package ``lucent.modelzoo`` would import ``torchvision.models`` (its model zoo), which the
    torchvision stand-in does not have."""
    import importlib.util

    import lucent

    path = Path(lucent.__file__).parent / "modelzoo" / "util.py"
    spec = importlib.util.spec_from_file_location("lucent_modelzoo_util", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_model_layers


WORKERS = {"ours": worker_ours, "floor": worker_floor, "lucent": worker_lucent}


def run_worker(name: str, spec_json: str, workdir: Path) -> None:
    import torch

    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    report = WORKERS[name](spec, workdir)
    report["torch"] = torch.__version__
    report["threads"] = torch.get_num_threads()
    (workdir / f"{name}.json").write_text(json.dumps(report))


# --------------------------------------------------------------------------- parent

def _dumps(value, indent: int = 0) -> str:
    """JSON with one key per line but short lists of numbers on one line."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(pad + _dumps(v, indent + 1) for v in value) + "\n" + "  " * indent + "]"
    return json.dumps(value)


def wait_quiet(limit_s: float, below: float = 0.5) -> float | None:
    """Wait (up to ``limit_s``) until the 1-minute load average drops below ``below``: other jobs on
    a shared machine slow whichever method happens to run beside them. Returns the load at the end."""
    if limit_s <= 0:
        return None
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(10)
    return round(os.getloadavg()[0], 2)


def spawn(name: str, python: Path | str, spec: dict, workdir: Path, quiet_s: float = 0) -> dict:
    load = wait_quiet(quiet_s)
    print(f"render bench: {name} ({Path(python).parent.parent.name}) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(python), str(Path(__file__).resolve()), "--worker", name, "--spec", json.dumps(spec),
                           "--workdir", str(workdir)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"render bench: worker '{name}' failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    report = json.loads((workdir / f"{name}.json").read_text())
    report["process_wall_s"] = round(time.perf_counter() - start, 1)
    report["loadavg_1min_before_start"] = load if load is not None else round(os.getloadavg()[0], 2)
    print(f"render bench: {name} done in {report['process_wall_s']} s", file=sys.stderr, flush=True)
    return report


def setup_baseline(choice: str, python: str | None = None) -> tuple[str, Path | str, dict]:
    """Run setup_lucent.sh (a check when the venv is ready); fall back to lucent_like if it fails.
    ``python``: an interpreter that already imports Lucent (no venv is built)."""
    info: dict = {"requested": choice}
    if choice == "lucent_like":
        return "lucent_like", sys.executable, info
    if python is not None:
        info["python"] = python
        return "lucent", python, info
    start = time.perf_counter()
    proc = subprocess.run(["bash", str(HERE / "setup_lucent.sh")], capture_output=True, text=True)
    info["setup_s"] = round(time.perf_counter() - start, 1)
    info["setup_output"] = (proc.stdout + proc.stderr).strip()[-2000:]
    if proc.returncode == 0 and LUCENT_PYTHON.exists():
        return "lucent", LUCENT_PYTHON, info
    if choice == "lucent":
        raise SystemExit(f"render bench: setup_lucent.sh failed:\n{info['setup_output']}")
    info["fallback_reason"] = "setup_lucent.sh failed; ran benchmarks/lucent_like.py (a re-implementation) instead"
    print(f"render bench: {info['fallback_reason']}", file=sys.stderr)
    return "lucent_like", sys.executable, info


def evaluate(images, channels: list[int]) -> list[float]:
    """Mean of each image's target channel at the layer, on the image as rendered (no transforms)."""
    import torch

    import neuronscope as ns

    model = ns.load(MODEL)
    x = torch.as_tensor(images, dtype=torch.float32)
    with torch.no_grad(), ns.capture(model, [LAYER]) as cap:
        acts = cap(x)[LAYER]
    return [round(float(acts[i, c].mean()), 3) for i, c in enumerate(channels)]


def per_vis(runs: list[dict], n: int) -> dict:
    return _summary([r["wall_s"] / n for r in runs], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--units", type=int, default=16, help="channels 7, 8, ... of the layer (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed renders of all units, neuronscope (default 3)")
    parser.add_argument("--lucent-repeats", type=int, default=2,
                        help="timed renders of all units, Lucent (default 2; one call of 8 at 256 steps takes 80-140 s on 2 cores)")
    parser.add_argument("--warmup-steps", type=int, default=8)
    parser.add_argument("--floor-calls", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where every method runs")
    parser.add_argument("--lucent-python", default=None,
                        help="an interpreter that imports Lucent 0.1.8 already (default: benchmarks/.venv-lucent)")
    parser.add_argument("--baseline", choices=["auto", "lucent", "lucent_like"], default="auto",
                        help="auto: real Lucent if benchmarks/setup_lucent.sh succeeds, else the re-implementation")
    parser.add_argument("--lucent-weights", choices=["trainable", "frozen"], default="trainable",
                        help="trainable: as users run Lucent (default); frozen: requires_grad off, as ns.load leaves them")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                        help="before each method, wait up to S seconds for the 1-min load average to fall below 0.5")
    parser.add_argument("--quick", action="store_true", help="smoke check: 8 steps, 1 repeat each; writes only with --out")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON file (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker, args.spec, args.workdir)
        return
    if args.quick:
        args.steps, args.repeats, args.lucent_repeats, args.warmup_steps, args.floor_calls = 8, 1, 1, 2, 3
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)

    import numpy as np
    import torch

    channels = list(range(FIRST_CHANNEL, FIRST_CHANNEL + args.units))
    common = {"channels": channels, "steps": args.steps, "size": args.size, "threads": args.threads,
              "device": args.device,
              "warmup_steps": args.warmup_steps}
    baseline, baseline_python, setup_info = setup_baseline(args.baseline, args.lucent_python)
    started = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="ns-render-bench-") as tmp:
        workdir = Path(tmp)
        ours = spawn("ours", sys.executable, {**common, "repeats": args.repeats}, workdir, args.wait_quiet)
        floor = spawn("floor", sys.executable,
                      {**common, "shapes": ours["model_input_shapes_per_step"], "calls": args.floor_calls}, workdir,
                      args.wait_quiet)
        lucent = spawn("lucent", baseline_python, {**common, "repeats": args.lucent_repeats, "baseline": baseline,
                                                   "lucent_weights": args.lucent_weights}, workdir, args.wait_quiet)
        ours_images = np.load(workdir / "ours_images.npy")
        lucent_images = np.load(workdir / "lucent_images.npy")
    n = len(channels)
    ours_vis, lucent_vis = per_vis(ours["runs"], n), per_vis(lucent["runs"], n)
    fractions = [r["timing"]["model_s"] / r["timing"]["total_s"] for r in ours["runs"]]
    ours_means, lucent_means = evaluate(ours_images, channels), evaluate(lucent_images, channels)

    report = {
        "benchmark": "render",
        "what": (f"seconds per feature visualization: {n} channels ({channels[0]}..{channels[-1]}) of {LAYER} of "
                 f"{MODEL}, {args.steps} Adam steps, {args.size} px images, torch.set_num_threads({args.threads})"),
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
        "neuronscope_source": source_state(),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "device": args.device,
                    "gpu": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None},
        "settings": {"model": MODEL, "layer": LAYER, "lucent_layer": lucent["lucent_layer"], "channels": channels,
                     "steps": args.steps, "size": args.size, "threads": args.threads, "quick": args.quick,
                     "warmup_steps": args.warmup_steps, "repeats": {"neuronscope": args.repeats, "lucent": args.lucent_repeats}},
        "baseline": baseline,
        "baseline_note": ("real torch-lucent 0.1.8 (benchmarks/.venv-lucent)" if baseline == "lucent" else
                          "benchmarks/lucent_like.py: a re-implementation of Lucent 0.1.8's loop, not Lucent itself"),
        "baseline_setup": setup_info,
        "neuronscope": {
            "s_per_vis": ours_vis,
            "model_fraction": _summary(fractions, 3),
            "timing_s": [{k: round(v, 2) for k, v in r["timing"].items()} for r in ours["runs"]],
            "cpu_s_per_run": [{k: r[k] for k in ("user_s", "sys_s", "minor_faults")} for r in ours["runs"]],
            "config": ours["config"],
            "batch_size": ours["batch_size"],
            "model_input_shapes_per_step": ours["model_input_shapes_per_step"],
            "peak_rss_mb": ours["peak_rss_mb"],
            "rss_after_load_mb": ours["rss_after_load_mb"],
            "cpu_over_wall": ours["cpu_over_wall"],
            "loadavg_1min_before_start_end": [ours["loadavg_1min_before_start"], *ours["loadavg_1min"]],
            "warnings": ours["warnings"],
        },
        "lucent": {
            "s_per_vis": lucent_vis,
            "calls_s": [[round(c, 2) for c in r["calls_s"]] for r in lucent["runs"]],
            "cpu_s_per_run": [{k: r[k] for k in ("user_s", "sys_s", "minor_faults")} for r in lucent["runs"]],
            "batch": lucent["batch"],
            "weights": lucent["weights"],
            "hooks_left_per_call": lucent["hooks_left_per_call"],
            "peak_rss_mb": lucent["peak_rss_mb"],
            "rss_after_load_mb": lucent["rss_after_load_mb"],
            "cpu_over_wall": lucent["cpu_over_wall"],
            "loadavg_1min_before_start_end": [lucent["loadavg_1min_before_start"], *lucent["loadavg_1min"]],
        },
        "floor": {
            "what": (f"bare forward+backward (input gradient only) of Lite0 stopped after {LAYER}, at the shapes "
                     "neuronscope feeds the model, x steps / units. plain: the module as ns.load gives it; "
                     "folded_channels_last: BatchNorm folded into the convs and channels-last memory (done here, "
                     "independently of neuronscope), the tricks neuronscope's fast path uses"),
            "plain": floor["plain"],
            "folded_channels_last": floor["folded_channels_last"],
            "peak_rss_mb": floor["peak_rss_mb"],
        },
        "ratios": {
            "lucent_over_neuronscope_median": round(lucent_vis["median"] / ours_vis["median"], 2),
            "lucent_over_neuronscope_min": round(lucent_vis["min"] / ours_vis["min"], 2),
            "neuronscope_over_floor_plain_median": round(ours_vis["median"] / floor["plain"]["s_per_vis"]["median"], 2),
            "neuronscope_over_floor_folded_channels_last_median":
                round(ours_vis["median"] / floor["folded_channels_last"]["s_per_vis"]["median"], 2),
            "lucent_over_floor_plain_median": round(lucent_vis["median"] / floor["plain"]["s_per_vis"]["median"], 2),
            "peak_rss_lucent_over_neuronscope": round(lucent["peak_rss_mb"] / ours["peak_rss_mb"], 2),
        },
        "objective": {
            "what": f"mean of each image's target channel at {LAYER}, final {args.size} px images, no transforms",
            "channels": channels,
            "neuronscope": ours_means,
            "lucent": lucent_means,
            "neuronscope_reported_values": [round(v, 3) for v in ours["values"]],
            "median": {"neuronscope": round(statistics.median(ours_means), 3),
                       "lucent": round(statistics.median(lucent_means), 3)},
        },
    }
    text = _dumps(report)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, out)
        print(f"render bench: wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
