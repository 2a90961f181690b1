"""Scale-out: the dataset-examples pass and unit rendering, single process vs DataLoader workers
vs Ray, against the model's own forward time, in one run.

    .venv/bin/python benchmarks/scale.py [--images 330] [--units 8] [--out benchmarks/results/scale.json]

Examples pass: Lite0 at 224 px over a folder of JPEG files (the bundled photos' crops, written at
their natural size, as a real dataset would hold them), one capture of the default gallery's six
layers, k = 9, batch 16, no cache. Reported as images/s, and as the fraction of the *forward
floor*: the same captures on inputs already decoded and resized in memory (what no engine can
avoid). Where the time goes: decoding alone (one process) and the forward floor.

Rendering: ``engine.render`` of the gallery's unit renders (its default RenderConfig, 3 diverse
samples per unit) for ``--units`` units of blocks.4.2 in chunks of 4 units, units per minute.

Ray runs on a local cluster started here (``num_cpus`` = this machine's CPUs); its start-up is
timed on its own and not included in the pass. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import neuronscope as ns
from neuronscope.capture import capture
from neuronscope.data.loading import Decoded, Preparer, default_workers
from neuronscope.data.sources import ImageSource, bundled_source, folder_source
from neuronscope.examples.topk import ExamplesConfig, dataset_examples
from neuronscope.gallery import GalleryConfig
from neuronscope.gallery.engine import Engine, LocalEngine
from neuronscope.gallery.plan import chunks
from neuronscope.manifest import write_json
from neuronscope.models.depth import representative_layers

BATCH = 16
RENDER_LAYER = "blocks.4.2"
CHUNK = 4


def jpeg_folder(folder: Path, images: int) -> ImageSource:
    """``images`` bundled crops (cycling through the 330) as JPEG files, quality 90."""
    source = bundled_source()
    keys = source.keys()
    for i in range(images):
        array = np.clip(np.asarray(source.load(keys[i % len(keys)])) * 255 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(array).save(folder / f"{i:05d}.jpg", quality=90)
    return folder_source(folder)


def forward_floor(model: ns.Model, layers: list[str], source: ImageSource) -> dict:
    """The pass's captures on inputs decoded beforehand: images/s of the model alone."""
    decoded = Decoded(source, [Preparer.of(model, model.input_size)])
    start = time.perf_counter()
    inputs = torch.stack([decoded[i][2][0] for i in range(len(decoded))])
    decode_s = time.perf_counter() - start
    with torch.no_grad(), capture(model, layers) as cap:
        cap(inputs[:BATCH])  # warm-up
        start = time.perf_counter()
        for first in range(0, len(inputs), BATCH):
            cap(inputs[first : first + BATCH])
        forward_s = time.perf_counter() - start
    n = len(inputs)
    return {"images": n, "decode_s": round(decode_s, 2), "decode_images_per_s": round(n / decode_s, 1),
            "forward_s": round(forward_s, 2), "forward_images_per_s": round(n / forward_s, 1)}


def examples_pass(name: str, model: ns.Model, layers: list[str], source: ImageSource, workers: int | None,
                  engine: Engine, floor_ips: float) -> dict:
    config = ExamplesConfig(k=9, batch=BATCH, workers=workers, progress=False)
    start = time.perf_counter()
    dataset_examples(model, source, layers, config, runner=engine.pass_runner())
    seconds = time.perf_counter() - start
    ips = len(source) / seconds
    return {"run": name, "seconds": round(seconds, 2), "images_per_s": round(ips, 1),
            "fraction_of_forward_floor": round(ips / floor_ips, 3)}


def render_rate(name: str, model: ns.Model, units: int, engine: Engine) -> dict:
    config = GalleryConfig(progress=False)
    jobs = [(RENDER_LAYER, c) for c in chunks(list(range(units)), CHUNK)]
    start = time.perf_counter()
    done = sum(len(chunk.channels) for chunk in engine.render(model, jobs, config))
    seconds = time.perf_counter() - start
    return {"run": name, "units": done, "samples_per_unit": config.samples, "steps": config.render.steps,
            "size": config.render.size, "seconds": round(seconds, 1), "units_per_minute": round(60 * done / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=330)
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/scale.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    layers = list(representative_layers(model))
    report = {"model": model.name, "layers": layers, "batch": BATCH, "threads": args.threads,
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "torch": torch.__version__, "load_1min_before": round(os.getloadavg()[0], 2)}
    folder = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        source = jpeg_folder(folder, args.images)
        floor = report["forward_floor"] = forward_floor(model, layers, source)
        local = LocalEngine()
        dataloader_workers = max(1, default_workers(source, BATCH))
        passes = [examples_pass("single process (workers=0)", model, layers, source, 0, local, floor["forward_images_per_s"]),
                  examples_pass(f"DataLoader workers={dataloader_workers}", model, layers, source, dataloader_workers,
                                local, floor["forward_images_per_s"])]
        renders = [render_rate("single process", model, args.units, local)]
        if not args.skip_ray:
            from neuronscope.scale import RayConfig, RayEngine

            report["ray_version"] = __import__("ray").__version__
            for workers in (1, 2):
                start = time.perf_counter()
                with RayEngine(RayConfig(num_cpus=os.cpu_count(), workers=workers)) as engine:
                    startup = time.perf_counter() - start
                    row = examples_pass(f"ray, {workers} model worker(s)", model, layers, source, None, engine,
                                        floor["forward_images_per_s"])
                    row["cluster_start_s"] = round(startup, 1)
                    passes.append(row)
                    renders.append(render_rate(f"ray, {workers} worker(s)", model, args.units, engine))
        report["examples_pass"] = passes
        report["render"] = renders
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_json(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
