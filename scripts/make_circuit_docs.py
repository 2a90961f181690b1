"""Render the pictures of docs/circuits.md that the CLI does not make (about 1 minute on 2 cores).

    .venv/bin/python scripts/make_circuit_docs.py
"""
from __future__ import annotations

from pathlib import Path

import torch

import neuronscope as ns
from neuronscope.circuits.expanded import expanded_weights
from neuronscope.circuits.pictures import spatial_position_images, weight_picture
from neuronscope.circuits.views import objective_views
from neuronscope.featurevis.render import RenderConfig
from neuronscope.images import contact_sheet, save_png

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    weights = expanded_weights(model, "blocks.4.2:6", "blocks.3.2")
    tiled = spatial_position_images(model, weights, config=RenderConfig(steps=96, size=40, progress=False))
    nmf = weight_picture(weights)
    nmf = nmf.repeat_interleave(tiled.shape[-1] // nmf.shape[-1], 1).repeat_interleave(tiled.shape[-1] // nmf.shape[-1], 2)
    save_png(IMAGES / "weights_spatial_positions.png", contact_sheet(
        [tiled, nmf], ["each window cell's weight vector, visualized", "one-sided NMF of the weights as RGB"], columns=2))
    views = objective_views(model, "blocks.4.2:6", RenderConfig(progress=False))
    save_png(IMAGES / "objective_views.png", views.rendered.sheet(columns=3))


if __name__ == "__main__":
    main()
