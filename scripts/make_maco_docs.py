"""Make the MaCo figure of docs/rendering.md: today's MaCo against MaCo as its authors run it.

    .venv/bin/python scripts/make_maco_docs.py [--classes 1,9,93,948]

Per class, four pictures: MaCo with neuronscope's defaults (natural contrast, 224 px, 256 steps);
the authors' recipe (a 1280 px canvas seen through 6 random crops of 20-25 % of its side per step,
noise 0.05, NAdam, 64 steps), whole; its centre 22.5 % (the scale it was
optimized at); and its transparency map (where the gradient went, MaCo's attribution of the
image) laid over the canvas. Captions say how many of Lite0/1/2 classify each picture top-1 as its
class (whole image at the model's input size). Writes docs/images/maco_recipe.png and .json.
About 4 minutes on a 2-core CPU.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import neuronscope as ns
from neuronscope.featurevis.render import RenderConfig, render_units
from neuronscope.images import contact_sheet, save_png
from neuronscope.manifest import build_manifest, write_json

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
CENTRE = 0.225
"""The side fraction the recipe's crops (20-25 %) see on average."""
SHOWN = 256
"""Pixels a picture gets on the sheet."""


def centre(images: torch.Tensor, fraction: float) -> torch.Tensor:
    side = images.shape[-1]
    crop = round(side * fraction)
    start = (side - crop) // 2
    return images[..., start:start + crop, start:start + crop]


def shown(images: torch.Tensor) -> torch.Tensor:
    return F.interpolate(images, size=(SHOWN, SHOWN), mode="bicubic", antialias=True).clamp(0, 1)


def overlay(images: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The image where the map is high, fading to white where it is low (the map's square root,
    so that weak but real attribution stays visible)."""
    a = shown(alpha).sqrt()
    return shown(images) * a + (1 - a)


def agreement(models: dict[str, ns.Model], images: torch.Tensor, classes: list[int]) -> list[int]:
    """Per image, how many models classify it (whole, at their input size) top-1 as its class."""
    arrays = [image.permute(1, 2, 0).numpy() for image in images]
    votes = [0] * len(classes)
    for model in models.values():
        for i, (predictions, k) in enumerate(zip(ns.classify(model, arrays, top=1, crop=False), classes)):
            votes[i] += predictions[0].index == k
    return votes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="1,9,93,948")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    classes = [int(k) for k in args.classes.split(",")]
    models = {name: ns.load(name) for name in MODELS}
    lite0 = models["efficientnet_lite0"]
    units = [f"logits:{k}" for k in classes]
    plain = render_units(lite0, units, RenderConfig(param="maco", progress=False))
    authors_config = RenderConfig(param="maco", optimizer="nadam", transforms="maco", views=6, steps=64, size=1280,
                                  transparency=True, progress=False)
    authors = render_units(lite0, units, authors_config)
    canvas = authors.images
    crops = centre(canvas, CENTRE)
    votes = {name: agreement(models, pictures, classes)
             for name, pictures in (("defaults", plain.images), ("canvas", canvas), ("centre", crops))}
    pictures, captions = [], []
    for i, k in enumerate(classes):
        label = lite0.labels[k]
        pictures += [shown(plain.images[i:i + 1])[0], shown(canvas[i:i + 1])[0], shown(crops[i:i + 1])[0],
                     overlay(canvas[i:i + 1], authors.alpha[i:i + 1])[0]]
        captions += [f"{label}: {votes['defaults'][i]}/3", f"authors' canvas: {votes['canvas'][i]}/3",
                     f"centre {CENTRE:.0%}: {votes['centre'][i]}/3", "transparency map"]
    sheet = contact_sheet(pictures, captions, columns=4,
                          title="MaCo on Lite0: defaults | authors' recipe | its centre | transparency "
                                "(n/3: top-1 of Lite0/1/2)")
    save_png(IMAGES / "maco_recipe.png", sheet)
    write_json(IMAGES / "maco_recipe.json", {
        **build_manifest("maco_recipe", model=lite0, classes=classes, defaults=plain.manifest["config"],
                         authors=authors.manifest["config"], centre_fraction=CENTRE),
        "top1_votes": votes, "pixel_std": {"defaults": float(plain.images.std()), "canvas": float(canvas.std())},
        "timing_s": {"defaults": plain.timing["total_s"], "authors": authors.timing["total_s"]},
    })
    print(IMAGES / "maco_recipe.png", votes, flush=True)


if __name__ == "__main__":
    main()
