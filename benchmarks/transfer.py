"""Do Lite0's feature visualizations convince other models? The transfer figure of the docs.

For 100 ImageNet classes drawn with a fixed seed, class visualizations made on Lite0 with the
defaults (the model's input size, Lucid's transforms with zooms) for each parameterization are
saved as PNGs and classified from the files, as a user would, by Lite0, Lite1 and Lite2 at their
own input sizes: top-1 and top-5, with ``classify``'s defaults (centre crop) and whole. Also per
image: contrast (standard deviation of the pixel values) and the target's probability on Lite0,
and the robustness (``crop_robustness``) of the class images and of 16 mid-layer channel images.

    .venv/bin/python benchmarks/transfer.py [--classes 100] [--params fourier,maco] [--work /tmp/transfer]

Resumable: images already in ``--work`` are reused. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import functools
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import neuronscope as ns
from neuronscope.capture import capture
from neuronscope.featurevis.param.maco import NATURAL_CONTRAST, MacoImage
from neuronscope.featurevis.render import RenderConfig, render_units
from neuronscope.featurevis.robustness import crop_robustness
from neuronscope.images import save_png
from neuronscope.manifest import write_json

TARGETS = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
CHANNEL_LAYER, CHANNELS = "blocks.4.2", range(16)
CHUNK = 16
NATURAL = functools.partial(MacoImage, contrast=NATURAL_CONTRAST)
VARIANTS = {
    "maco-natural": RenderConfig(param=NATURAL, progress=False),
    "maco-plain": RenderConfig(param=functools.partial(MacoImage, contrast=1.0), progress=False),
    "maco-authors": RenderConfig(param=NATURAL, optimizer="nadam", transforms="maco", views=6, steps=64, size=1280,
                                 progress=False),
}
"""Parameterizations beyond the named ones with their defaults: MaCo at the pixel contrast of
natural photos, MaCo at the reference code's contrast, and MaCo as its authors run it (a 1280 px
image seen through 6 random crops of 20-25 % of its side per step, noise, NAdam) at natural
contrast, with 64 steps of 6 crops (1.5x the model evaluations of the defaults' 256 steps)."""


def config_of(param: str) -> RenderConfig:
    """The render settings of ``param``: a variant, or the named parameterization with the defaults."""
    return VARIANTS.get(param) or RenderConfig(param=param, progress=False)


def drawn_classes(count: int, subset: int | None = None, seed: int = 0) -> list[int]:
    """``count`` classes drawn with ``seed``, sorted; with ``subset``, the first ``subset`` drawn."""
    drawn = random.Random(seed).sample(range(1000), count)
    return sorted(drawn[:subset] if subset else drawn)


def class_images(model: ns.Model, classes: list[int], param: str, folder: Path) -> tuple[list[Path], float]:
    """One PNG per class (rendered where missing, CHUNK at a time); seconds spent rendering."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{k:04d}.png" for k in classes]
    missing = [k for k, p in zip(classes, paths) if not p.exists()]
    start = time.perf_counter()
    for i in range(0, len(missing), CHUNK):
        part = missing[i : i + CHUNK]
        result = render_units(model, [f"logits:{k}" for k in part], config_of(param))
        for k, image, history in zip(part, result.images, result.history.T):
            save_png(folder / f"{k:04d}.png", image)
            write_json(folder / f"{k:04d}.json", {"reached": float(history[-10:].mean()), "steps": len(history)})
        print(f"  {param}: {i + len(part)}/{len(missing)} rendered ({time.perf_counter() - start:.0f} s)", flush=True)
    return paths, time.perf_counter() - start


def whole(images: torch.Tensor, model: ns.Model) -> torch.Tensor:
    """Images resized whole to the model's input size (unchanged when they have it)."""
    if tuple(images.shape[-2:]) == tuple(model.input_size):
        return images
    return torch.nn.functional.interpolate(images, size=model.input_size, mode="bicubic", antialias=True).clamp(0, 1)


def as_tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def hits(model: ns.Model, paths: list[Path], classes: list[int], crop: bool) -> dict:
    top1 = top5 = 0
    for i in range(0, len(paths), 25):
        part = [str(p) for p in paths[i : i + 25]]
        for predictions, k in zip(ns.classify(model, part, top=5, crop=crop), classes[i : i + 25]):
            indices = [p.index for p in predictions]
            top1 += indices[0] == k
            top5 += k in indices
    return {"top1": top1 / len(paths), "top5": top5 / len(paths)}


def as_made(paths: list[Path], classes: list[int], fraction: float) -> dict:
    """Crop-mode pictures viewed at the scale they were optimized at: the centre ``fraction`` of
    the side, classified whole by each target model at its own input size."""
    crops = []
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        side = round(image.shape[0] * fraction)
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        crops.append(image[top : top + side, left : left + side])
    found = {}
    for name in TARGETS:
        predictions = ns.classify(ns.load(name), crops, top=5, crop=False)
        found[name] = {"top1": float(np.mean([p[0].index == k for p, k in zip(predictions, classes)])),
                       "top5": float(np.mean([k in [q.index for q in p] for p, k in zip(predictions, classes)]))}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--params", default="fourier,maco", help=f"names, or {', '.join(VARIANTS)}")
    parser.add_argument("--subset", type=int, default=None, help="only the first N of the drawn classes (a quick look)")
    parser.add_argument("--work", default="/tmp/neuronscope-transfer")
    parser.add_argument("--out", default="benchmarks/results/transfer.json")
    args = parser.parse_args()
    classes = drawn_classes(args.classes, args.subset)
    source = ns.load("efficientnet_lite0")
    targets = {name: ns.load(name) for name in TARGETS}
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    report = {"classes": classes, "class_seed": 0, "made_on": "efficientnet_lite0",
              "render": "RenderConfig() defaults: 256 steps, the model's input size (224), zoom transforms",
              "versions": {"torch": torch.__version__, "neuronscope": ns.__version__},
              "params": previous.get("params", {}) if previous.get("classes") == classes else {}}
    for param in args.params.split(","):
        paths, render_s = class_images(source, classes, param, Path(args.work) / param)
        images = [as_tensor(p) for p in paths]
        entry = {"render_s": round(render_s, 1), "transfer": {}}
        for name, model in targets.items():
            entry["transfer"][name] = {"defaults": hits(model, paths, classes, crop=True),
                                       "whole": hits(model, paths, classes, crop=False)}
            print(f"{param} -> {name}: {entry['transfer'][name]}", flush=True)
        batch = torch.stack(images)
        with torch.no_grad(), capture(source, ["logits"]) as cap:
            logits = [cap(whole(batch[i : i + 25], source))["logits"] for i in range(0, len(batch), 25)]
            probabilities = torch.cat(logits).softmax(1)
        entry["probability_on_lite0"] = float(probabilities[torch.arange(len(classes)), torch.tensor(classes)].mean())
        entry["logit_on_lite0"] = float(torch.cat(logits)[torch.arange(len(classes)), torch.tensor(classes)].mean())
        reached = [json.loads(p.with_suffix(".json").read_text())["reached"] for p in paths if p.with_suffix(".json").exists()]
        entry["logit_reached"] = float(np.mean(reached)) if reached else None  # on the views, last 10 steps
        entry["contrast_std"] = float(batch.flatten(1).std(1).mean())
        entry["class_robustness"] = float(np.nanmean(crop_robustness(source, images, [f"logits:{k}" for k in classes])))
        channel_units = [f"{CHANNEL_LAYER}:{c}" for c in CHANNELS]
        config = config_of(param)
        channels = render_units(source, channel_units, config)
        ratios = crop_robustness(source, channels.images, channel_units)
        entry["channel_robustness"] = {"layer": CHANNEL_LAYER, "units": len(channel_units),
                                       "mean": float(np.nanmean(ratios)), "min": float(np.nanmin(ratios))}
        entry["channel_contrast_std"] = float(channels.images.flatten(1).std(1).mean())
        crop = config.transform_config.crop
        if crop is not None:  # MaCo as its authors run it: a large image seen through crops
            entry["as_made"] = {"centre_fraction": sum(crop) / 2, **as_made(paths, classes, sum(crop) / 2)}
        report["params"][param] = entry
        print(param, {k: v for k, v in entry.items() if k != "transfer"}, flush=True)
        write_json(out, report)
    print(args.out)


if __name__ == "__main__":
    main()
