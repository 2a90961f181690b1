"""Coarse-to-fine for class visualizations: a lever of issue 28, measured (not kept).

    .venv/bin/python benchmarks/coarse_to_fine.py      # about 6 min on 2 cores

The 8 classes of ``time_to_quality.py`` (224 px, Lite0), one batch, seeds 0-7. Each plan is timed
end to end and its images are scored untransformed (the class logit at 224 px) at checkpoints:

* ``defaults``: ``render_units`` at 224 px (the defaults: zoom transforms, Adam 0.05);
* ``coarse<S>x<N>``: N steps on an S-px Fourier image (the zoom transforms' pixel amounts scaled by
  S/224), then its spectrum embedded in a 224-px one (the same frequencies in cycles per image:
  with the 1/f scaling and the unitary FFT the learnable values carry over unchanged, so the
  224-px image starts as the S-px one upsampled) and the render goes on at 224 px with Adam's
  moments carried over (new frequencies: zero momentum, the mean second moment), without the
  redirected-ReLU start; ``coarse<S>x<N>_fresh``: the same with a fresh Adam;
* ``lr0.1``: the defaults with a constant learning rate of 0.1.

Target = 90 % of Lucent 0.1.8's 512-step logit, read from ``results/time_to_quality.json``; the
time of a plan to an item's target = the coarse phase (if any) + the 224-px steps to the first
checkpoint reaching it, from the plan's measured seconds per step. A measurement, never a test.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from common import machine, source_state

HERE = Path(__file__).resolve().parent
CHECKPOINTS = (32, 64, 96, 128, 160, 192)
COARSE = ((112, 96), (160, 64))
SIDE = 224


def rows_of(size: int):
    """The 224-px spectrum's rows that hold an S-px spectrum's rows (frequency in cycles per image)."""
    import torch

    cycles = list(range(0, (size + 1) // 2)) + list(range(-(size // 2), 0))
    return torch.tensor([c % SIDE for c in cycles])


def embed(small, size: int, shape, fill: float = 0.0):
    """An S-px rfft2 grid's values placed at the same frequencies of a 224-px grid; ``fill`` elsewhere."""
    import torch

    big = torch.full(shape, fill, dtype=small.dtype)
    big[:, :, rows_of(size), : small.shape[3]] = small
    return big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "coarse_to_fine.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from time_to_quality import CLASSES, MODEL, TARGET, evaluate, time_to_target

    import neuronscope as ns
    from neuronscope.featurevis.loop import LoopConfig, optimize
    from neuronscope.featurevis.objectives.units import units_objective
    from neuronscope.featurevis.param.fourier import FourierImage
    from neuronscope.featurevis.render import RenderConfig
    from neuronscope.featurevis.transforms import ZOOM
    from neuronscope.manifest import write_json
    from neuronscope.units import parse_unit

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    facts = machine()
    reference = json.loads((HERE / "results" / "time_to_quality.json").read_text())["classes"]["lucent_512"]
    targets = [TARGET * v for v in reference]
    model = ns.load(MODEL)
    model.layers
    units = [f"logits:{name}" for name in CLASSES]
    parsed = [parse_unit(model, u) for u in units]
    objective = units_objective(model, parsed, 1, 0.0)
    seeds = list(range(len(units)))

    def logits(*images) -> list[list[float]]:
        """The class logits of each batch of images, untransformed (time_to_quality's scoring)."""
        return [[round(v, 2) for v in row] for row in evaluate(model, "classes", [i.float().numpy() for i in images])]

    def plain(**settings) -> dict:
        start = time.perf_counter()
        result = ns.render_units(model, units, RenderConfig(steps=max(CHECKPOINTS), seed=0, progress=False,
                                                            snapshots=CHECKPOINTS, **settings))
        wall = time.perf_counter() - start
        return {"coarse_s": 0.0, "s_per_step": wall / max(CHECKPOINTS),
                "values": dict(zip(CHECKPOINTS, logits(*(result.snapshots[k] for k in CHECKPOINTS))))}

    def coarse(size: int, steps: int, carry: bool) -> dict:
        ratio = size / SIDE
        small = FourierImage((size, size), seeds, device=model.device)
        transforms = replace(ZOOM, pad=round(ZOOM.pad * ratio), jitter=round(ZOOM.jitter * ratio),
                             jitter_after=round(ZOOM.jitter_after * ratio))
        kept = {}

        def remembering_adam(parameters, lr):
            kept["adam"] = torch.optim.Adam(parameters, lr=lr)
            return kept["adam"]

        start = time.perf_counter()
        optimize(model, objective, small, LoopConfig(steps=steps, transforms=transforms, optimizer=remembering_adam))
        coarse_s = time.perf_counter() - start
        big = FourierImage((SIDE, SIDE), seeds, device=model.device)
        moments = kept["adam"].state[small.spectrum]
        with torch.no_grad():
            big.spectrum.copy_(embed(small.spectrum.detach(), size, big.spectrum.shape))
            (at_switch,) = logits(big())

        def carried_adam(parameters, lr):
            adam = torch.optim.Adam(parameters, lr=lr)
            if carry:
                (spectrum,) = adam.param_groups[0]["params"]
                adam.state[spectrum] = {
                    "step": moments["step"].clone(),
                    "exp_avg": embed(moments["exp_avg"], size, spectrum.shape),
                    "exp_avg_sq": embed(moments["exp_avg_sq"], size, spectrum.shape,
                                        float(moments["exp_avg_sq"].mean())),
                }
            return adam

        start = time.perf_counter()
        run = optimize(model, objective, big, LoopConfig(steps=max(CHECKPOINTS), transforms=ZOOM, redirect_steps=0,
                                                          optimizer=carried_adam, snapshots=CHECKPOINTS))
        fine_s = time.perf_counter() - start
        return {"coarse_s": coarse_s, "s_per_step": fine_s / max(CHECKPOINTS), "at_switch": at_switch,
                "values": dict(zip(CHECKPOINTS, logits(*(run.snapshots[k] for k in CHECKPOINTS))))}

    plans = {"defaults": lambda: plain(), "lr0.1": lambda: plain(lr=0.1)}
    for size, steps in COARSE:
        plans[f"coarse{size}x{steps}"] = lambda size=size, steps=steps: coarse(size, steps, True)
        plans[f"coarse{size}x{steps}_fresh"] = lambda size=size, steps=steps: coarse(size, steps, False)
    ns.render_units(model, units, RenderConfig(steps=2, seed=0, progress=False))  # warm-up
    report = {}
    for name, plan in plans.items():
        found = plan()
        fine = time_to_target([found["values"][k] for k in CHECKPOINTS], list(CHECKPOINTS), targets,
                              {k: found["s_per_step"] for k in CHECKPOINTS})
        times = [None if t is None else round(found["coarse_s"] + t, 1) for t in fine]
        done = [t for t in times if t is not None]
        found.update({"time_to_target_s": times, "reached": len(done),
                      "mean_logit": {k: round(sum(v) / len(v), 2) for k, v in found["values"].items()}})
        found["coarse_s"], found["s_per_step"] = round(found["coarse_s"], 1), round(found["s_per_step"], 3)
        report[name] = found
        print(name, found["reached"], "of 8 reach the target; mean logit", found["mean_logit"], flush=True)
    write_json(args.out, {
        "benchmark": "coarse_to_fine", "started_utc": started, **facts, "threads": args.threads,
        **source_state(), "model": MODEL, "classes": CLASSES, "targets": [round(t, 2) for t in targets],
        "checkpoints": list(CHECKPOINTS), "plans": report,
        "note": "batch of 8 classes at once; s_per_step is per batch step (8 images); time_to_target_s includes "
                "the coarse phase; at_switch = logits of the embedded 224-px image before the fine phase",
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
