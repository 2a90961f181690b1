"""Which 2-D layout should an activation atlas use? UMAP vs t-SNE vs PCA on real Lite0 activations.

For each layer: the activation vectors of the bundled crops (330 images x 8 interior positions,
as ``activation_atlas`` collects them by default), laid out by each method; per method the wall
time (UMAP twice: its first call in a process compiles numba code), the trustworthiness of the
layout (``sklearn.manifold.trustworthiness``, 10 neighbours, euclidean and cosine), and what the
atlas makes of it: cells of an 8 x 8 grid over more than 5 samples, and how alike their members
are (mean cosine of each member to its cell's mean direction). A measurement, not a test.

    .venv/bin/python benchmarks/atlas_layout.py [--layers blocks.4.2,blocks.5.3] [--out benchmarks/results/atlas_layout.json]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.manifold import trustworthiness

import neuronscope as ns
from neuronscope.atlas import AtlasConfig, collect
from neuronscope.atlas.layout import (
    AUTO_LAYOUT,
    grid_cells,
    layout_2d,
    normalize_layout,
    umap_available,
)
from neuronscope.data.sources import bundled_source
from neuronscope.manifest import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="blocks.4.2,blocks.5.3")
    parser.add_argument("--positions", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/atlas_layout.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ns.load("efficientnet_lite0")
    methods = ["tsne", "pca"] + (["umap", "umap"] if umap_available() else [])
    report = {"model": model.name, "source": "bundled crops (330)", "positions_per_image": args.positions,
              "auto_layout": AUTO_LAYOUT, "umap_installed": umap_available(), "torch_threads": args.threads,
              "load_average_start": os.getloadavg(), "layers": {}}
    for layer in args.layers.split(","):
        samples = collect(model, bundled_source(), layer, AtlasConfig(positions=args.positions, attributions=False, progress=False))
        data = samples.activations.double().numpy()
        rows = {}
        for method in methods:
            start = time.perf_counter()
            xy, used = layout_2d(data, method, seed=0)
            seconds = time.perf_counter() - start
            name = used if used not in rows else f"{used}_second_call"
            rows[name] = {"seconds": round(seconds, 1), **_quality(data, xy, samples.activations)}
            print(layer, name, rows[name], flush=True)
        report["layers"][layer] = {"samples": len(samples), "channels": data.shape[1], "methods": rows}
        report["load_average_end"] = os.getloadavg()
        write_json(Path(args.out), report)
    print(args.out)


def _quality(data: np.ndarray, xy: np.ndarray, vectors: torch.Tensor) -> dict:
    cells = grid_cells(normalize_layout(xy), vectors, 8, 5)
    unit = torch.nn.functional.normalize(vectors, dim=1)
    directions = torch.nn.functional.normalize(cells.directions, dim=1)
    alike = [float((unit[m] @ directions[i]).mean()) for i, m in enumerate(cells.members)]
    return {"trustworthiness_euclidean": round(float(trustworthiness(data, xy, n_neighbors=10)), 4),
            "trustworthiness_cosine": round(float(trustworthiness(data, xy, n_neighbors=10, metric="cosine")), 4),
            "cells_8x8_over_5": len(cells), "samples_in_cells": int(cells.counts.sum()),
            "member_cosine_to_cell_mean": round(float(np.average(alike, weights=cells.counts)), 4)}


if __name__ == "__main__":
    main()
