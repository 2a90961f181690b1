"""Render the pictures and the transfer figures of docs/rendering.md.

    .venv/bin/python scripts/make_render_docs.py [--steps 256]

Writes docs/images/*.png (contact sheets with manifests) and docs/results/transfer.json: the
fraction of the 8 class visualizations of Lite0 that Lite1 and Lite2 also classify top-1 as the
class, for the Fourier and the MaCo parameterization. About 4 minutes on a 2-core CPU.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.featurevis.render import (
    DEFAULT_DIVERSITY_WEIGHT,
    RenderConfig,
    render_layer,
    render_units,
)
from neuronscope.images import save_png
from neuronscope.manifest import build_manifest, write_json

ROOT = Path(__file__).resolve().parents[1]
IMAGES, RESULTS = ROOT / "docs" / "images", ROOT / "docs" / "results"
CLASSES = [281, 967, 417, 948, 88, 980, 511, 327]
LAYERS = {"blocks.2.1": range(8), "blocks.3.1.bn1": range(8), "blocks.4.2": range(8), "blocks.5.1": range(8)}


def save_sheet(result: ns.Result, name: str, title: str, columns: int = 8) -> None:
    save_png(IMAGES / f"{name}.png", result.sheet(columns=columns, title=title))
    write_json(IMAGES / f"{name}.json", {**result.manifest, "values": result.values.tolist(), "timing": result.timing})
    print(f"{name}: {result.timing['total_s']:.1f} s")


def transfer(images: torch.Tensor, models: dict[str, ns.Model]) -> dict[str, dict[str, float]]:
    """Top-1 hits per model: fed directly at the render size, and resized whole to the model's size."""
    arrays = [image.permute(1, 2, 0).numpy() for image in images]
    figures = {}
    for name, model in models.items():
        with torch.no_grad(), ns.capture(model, ["logits"]) as cap:
            direct = cap(images)["logits"].argmax(1).tolist()
        whole = [p[0].index for p in ns.classify(model, arrays, top=1, crop=False)]
        figures[name] = {
            "direct_at_render_size": sum(a == c for a, c in zip(direct, CLASSES)) / len(CLASSES),
            "whole_image_at_native_size": sum(a == c for a, c in zip(whole, CLASSES)) / len(CLASSES),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    lite0 = ns.load("efficientnet_lite0")
    models = {name: ns.load(name) for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")}
    report = {}
    for param in ("fourier", "maco"):
        config = RenderConfig(steps=args.steps, param=param, progress=False)
        result = render_units(lite0, [f"logits:{c}" for c in CLASSES], config)
        save_sheet(result, f"classes_{param}", f"Lite0 class logits, {param}, {result.images.shape[-1]} px, {args.steps} steps")
        report[param] = transfer(result.images, models)
    write_json(RESULTS / "transfer.json", build_manifest("transfer", classes=CLASSES, steps=args.steps, results=report))
    print(report)
    for layer, channels in LAYERS.items():
        result = render_layer(lite0, layer, list(channels), RenderConfig(steps=args.steps, progress=False))
        save_sheet(result, f"layer_{layer}", f"Lite0 {layer}, channels 0-7, fourier, 128 px, {args.steps} steps")
    diverse = render_units(lite0, ["blocks.3.1.bn1:5", "blocks.4.2:6"], RenderConfig(steps=args.steps, progress=False),
                           samples=4, diversity=DEFAULT_DIVERSITY_WEIGHT)
    save_sheet(diverse, "diversity", f"4 diverse samples per unit (weight {DEFAULT_DIVERSITY_WEIGHT})", columns=4)


if __name__ == "__main__":
    main()
