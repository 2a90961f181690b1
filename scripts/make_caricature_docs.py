"""Render the pictures of docs/caricatures.md (about 6 minutes on a 2-core CPU).

    .venv/bin/python scripts/make_caricature_docs.py [--steps 256]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.data import preprocess
from neuronscope.featurevis.caricature import (
    CaricatureConfig,
    attributive_caricature,
    caricature,
    caricatures_across_models,
    similarity_sheet,
)
from neuronscope.images import contact_sheet, save_png
from neuronscope.manifest import write_json

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
LAYERS = ["blocks.1.1", "blocks.2.1", "blocks.3.1", "blocks.4.2", "blocks.5.1", "blocks.6.0", "bn2"]


def two_objects():
    """chelsea and coffee side by side, each 224 x 224: a 224 x 448 image fed at its own size."""
    halves = [preprocess.center_crop_resize(preprocess.to_tensor(ns.data.photo(n)), (224, 224)) for n in ("chelsea", "coffee")]
    return torch.cat(halves, dim=3)[0].permute(1, 2, 0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = CaricatureConfig(steps=args.steps, progress=False)
    lite0 = ns.load("efficientnet_lite0")

    layers = caricature(lite0, "chelsea", LAYERS, config)
    save_png(IMAGES / "caricature_layers.png", layers.sheet(title="chelsea through Lite0, shallow to deep (p = 1)"))
    write_json(IMAGES / "caricature_layers.json", {**layers.manifest, "similarity": layers.similarity.tolist()})
    print("layers", layers.similarity.tolist())

    models = [ns.load(n) for n in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")]
    rows = caricatures_across_models(models, "chelsea", ["blocks.2.1", "blocks.4.2", "blocks.5.1"], config)
    save_png(IMAGES / "caricature_models.png", rows.sheet())
    write_json(IMAGES / "caricature_models.json", rows.manifest)
    print("models", [r.layers for r in rows.results])

    wide = dict(steps=args.steps, size=(224, 448), progress=False)
    classes = ["Egyptian cat", "espresso"]
    pair = attributive_caricature(lite0, two_objects(), "blocks.5.1", classes, CaricatureConfig(cosine_power=0.0, **wide))
    positive = attributive_caricature(lite0, two_objects(), "blocks.5.1", classes, CaricatureConfig(cosine_power=1.0, **wide),
                                      positive=True)
    plain = caricature(lite0, two_objects(), ["blocks.5.1"], CaricatureConfig(**wide))
    sheet = contact_sheet([pair.reference, plain.images[0], *pair.images, *positive.images],
                          ["input (224 x 448)", "caricature blocks.5.1", *[f"{c}, signed (default)" for c in classes],
                           *[f"{c}, positive only, p = 1" for c in classes]], columns=2)
    save_png(IMAGES / "caricature_attributive.png", sheet)
    with torch.no_grad(), ns.capture(lite0, ["logits"]) as cap:
        logits = {"signed": cap(pair.images)["logits"][:, [285, 967]].tolist(),
                  "positive": cap(positive.images)["logits"][:, [285, 967]].tolist()}
    write_json(IMAGES / "caricature_attributive.json", {"signed": pair.manifest, "positive": positive.manifest,
                                                        "logits_cat_espresso": logits})
    print("attributive logits [cat, espresso] per caricature", logits)

    save_png(IMAGES / "caricature_similarity.png", similarity_sheet(lite0, layers, LAYERS.index("blocks.4.2"), (6, 5)))


if __name__ == "__main__":
    main()
