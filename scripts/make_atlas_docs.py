"""Make the pictures of docs/atlas.md: an activation atlas and a class activation atlas of Lite0.

    .venv/bin/python scripts/make_atlas_docs.py [--layer blocks.4.2] [--target tabby] [--steps 128]

One collection of the bundled crops (330 images x 8 positions, with class attributions) feeds both
atlases. Writes docs/images/atlas_<layer>.png (labelled canvas under a title),
atlas_<layer>_<class>.png and their manifests (.json, with the cell tables). About 15 minutes on
a busy 2-core CPU.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.atlas import AtlasConfig, activation_atlas, collect
from neuronscope.data.sources import bundled_source
from neuronscope.images import file_safe, save_png
from neuronscope.manifest import write_json

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="blocks.4.2")
    parser.add_argument("--target", default="tabby")
    parser.add_argument("--steps", type=int, default=AtlasConfig().steps)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    config = AtlasConfig(steps=args.steps)
    samples = collect(model, bundled_source(), args.layer, config)
    for target in (None, args.target):
        atlas = activation_atlas(model, None, args.layer, config=config, target=target, samples=samples)
        name = f"atlas_{file_safe(args.layer)}" + (f"_{file_safe(str(target))}" if target is not None else "")
        save_png(IMAGES / f"{name}.png", atlas.sheet())
        write_json(IMAGES / f"{name}.json", atlas.manifest)
        print(atlas, f"diagonal dominance {atlas.diagonal_dominance():.3f}",
              {k: round(v, 1) for k, v in atlas.timing.items()}, flush=True)


if __name__ == "__main__":
    main()
