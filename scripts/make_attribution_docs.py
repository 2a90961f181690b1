"""Measure which layers attribution can be trusted at, and render the pictures of docs/building-blocks.md.

    .venv/bin/python scripts/make_attribution_docs.py

Writes docs/results/attribution_layers.json: for each stage output and the head of Lite0 and three
photos, the correlation over the 1000 classes between the summed attribution and the logit.
About 2 minutes on a 2-core CPU.
"""
from __future__ import annotations

from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.attribution.factor import class_factors
from neuronscope.attribution.hidden import (
    attribute,
    attribute_all_classes,
    logit_agreement,
)
from neuronscope.data import preprocess
from neuronscope.images import contact_sheet, heat_overlay, save_png
from neuronscope.manifest import build_manifest, write_json

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["blocks.2", "blocks.3", "blocks.4", "blocks.5", "blocks.6", "bn2", "act2"]
PHOTOS = ["chelsea", "coffee", "rocket"]


def two_objects() -> torch.Tensor:
    halves = [preprocess.center_crop_resize(preprocess.to_tensor(ns.data.photo(n)), (224, 224)) for n in ("chelsea", "coffee")]
    return torch.cat(halves, dim=3)


def main() -> None:
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    table = {layer: {photo: round(logit_agreement(attribute_all_classes(model, photo, layer)), 3) for photo in PHOTOS}
             for layer in LAYERS}
    write_json(ROOT / "docs/results/attribution_layers.json",
               build_manifest("attribution layer agreement", model=model.name, photos=PHOTOS, correlation=table))
    for layer, row in table.items():
        print(layer, row)

    result = attribute(model, ["Egyptian cat", "tiger cat", "lynx"], "chelsea", "act2")
    save_png(ROOT / "docs/images/attribution_chelsea.png", contact_sheet(
        [result.image, *[heat_overlay(result.image, m) for m in result.spatial]],
        ["input", *[f"{t} ({v:+.2f})" for t, v in zip(result.targets, result.total.tolist())]], columns=4))

    x = two_objects()
    factors = class_factors(attribute_all_classes(model, x, "act2"), k=2, seed=0)
    captions = [", ".join(label for _, label in factors.top(f, 3)) for f in range(2)]
    maps = [heat_overlay(x[0], torch.from_numpy(m), c) for m, c in zip(factors.maps, [(1.0, 0.5, 0.1), (0.2, 0.5, 1.0)])]
    save_png(ROOT / "docs/images/attribution_factors.png", contact_sheet(
        [x[0], factors.overlay(x[0]), *maps], ["input (224 x 448)", "2 factors: hue = factor", *captions], columns=2))
    print("factors", [factors.top(f, 5) for f in range(2)])


if __name__ == "__main__":
    main()
