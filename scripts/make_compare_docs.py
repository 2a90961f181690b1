"""The pictures and numbers of docs/comparison.md: Lite0 vs Lite1 on the bundled crops.

    .venv/bin/python scripts/make_compare_docs.py [--images 330] [--units 5] [--no-calibration]

Writes docs/images/compare_similarity.png (CKA and mean best-match heatmaps), compare_matches.png
(the sheet of matched units, with its manifest) and docs/results/compare.json (the matrices, the
units shown, and a calibration: Lite0 at 224 px against the same Lite0 at 240 px, which bounds
what resolution and alignment alone cost a unit's correlation with itself). Prints the tables
of the doc. About 15 minutes on a 2-core CPU.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import neuronscope as ns
from neuronscope.comparison import SheetConfig, matched_units
from neuronscope.comparison.report import describe
from neuronscope.data import bundled_source, first
from neuronscope.images import save_png
from neuronscope.manifest import build_manifest, write_json

ROOT = Path(__file__).resolve().parents[1]
IMAGES, RESULTS = ROOT / "docs" / "images", ROOT / "docs" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=330)
    parser.add_argument("--units", type=int, default=5)
    parser.add_argument("--no-calibration", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    lite0, lite1 = ns.load("efficientnet_lite0"), ns.load("efficientnet_lite1")
    source = first(bundled_source(), args.images)
    matches = ns.match_units(lite0, lite1, source=source)
    save_png(IMAGES / "compare_similarity.png", matches.heatmap())
    config = SheetConfig()
    matched = matched_units(lite0, lite1, matches, args.units, source, config)
    pairs = matched.pairs
    save_png(IMAGES / "compare_matches.png", matched.sheet())
    shown = [{"unit_a": p.unit_a, "unit_b": p.unit_b, "correlation": round(p.correlation, 4)} for p in pairs]
    write_json(IMAGES / "compare_matches.json", build_manifest(
        "unit matches", model=lite0, model_b=lite1.name, images=matches.images, sheet=config, shown=shown))
    record = {"models": [lite0.name, lite1.name], "images": matches.images, "source": matches.source,
              "summary": {k: v for k, v in matches.summary().items() if k not in ("best_a", "best_b", "pairs")},
              "shown": shown}
    table = describe(matches)
    for row in table:
        print(" | ".join(row))
    if not args.no_calibration:
        record["calibration"] = calibration(lite0, source)
        print("calibration (Lite0 224 vs Lite0 240):", record["calibration"])
    write_json(RESULTS / "compare.json", record)
    np.set_printoptions(precision=3, suppress=True, linewidth=160)
    print("CKA\n", matches.cka, "\nmean best A->B\n", matches.mean_best, "\nmean best B->A\n", matches.mean_best_reverse)


def calibration(lite0: ns.Model, source) -> dict:
    """Lite0 against itself at 240 px: per layer the CKA, the mean correlation of each unit with
    itself, and how often a unit's best match is itself."""
    wide = ns.ModelSpec("efficientnet_lite0", input_size=240).load()
    m = ns.match_units(lite0, wide, source=source, config=ns.MatchConfig(progress=False))
    found = {}
    for i, layer in enumerate(m.layers_a):
        r = m.correlation(layer, layer)
        index, _ = m.best(layer, layer, k=1)
        live = index[:, 0] >= 0
        found[layer] = {"cka": round(float(m.cka[i, i]), 4), "same_unit_r": round(float(np.nanmean(np.diag(r))), 4),
                        "best_is_itself": round(float((index[live, 0] == np.flatnonzero(live)).mean()), 4),
                        "grid": [int(g) for g in m.grids[i, i]]}
    return found


if __name__ == "__main__":
    main()
