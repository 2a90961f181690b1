"""A comparison written to a folder: the heatmap, the sheet of matched units, the numbers and a manifest."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.sources import ImageSource
from ..examples.results import LayerExamples
from ..images import save_png
from ..manifest import build_manifest, write_json
from ..models.model import Model
from .sheets import SheetConfig, matched_units

if TYPE_CHECKING:
    from .result import UnitMatches

HEATMAP = "similarity.png"
SHEET = "matches.png"
MANIFEST = "manifest.json"


def write_comparison(model_a: Model, model_b: Model, matches: UnitMatches, folder: str | Path,
                     units: Sequence[str] | int = 4, source: ImageSource | None = None,
                     config: SheetConfig | None = None,
                     examples: tuple[dict[str, LayerExamples], dict[str, LayerExamples]] | None = None) -> list[Path]:
    """Write into ``folder``: ``similarity.png`` (CKA and mean best-match heatmaps across depth),
    ``matches.png`` (the sheet of matched ``units``, see ``pick_units``), ``matches.json`` and
    ``matches.npz`` (``UnitMatches.save``) and ``manifest.json`` (models, layers, source,
    settings, the units shown, versions). ``examples``: both models' dataset examples of the
    compared layers, if the matching's pass collected them. Returns the paths written."""
    folder = Path(folder)
    config = config or SheetConfig()
    shown = matched_units(model_a, model_b, matches, units, source, config, examples)
    pairs, sheet = shown.pairs, shown.sheet()
    paths = [save_png(folder / HEATMAP, matches.heatmap()), save_png(folder / SHEET, sheet), *matches.save(folder)]
    manifest = build_manifest(
        "unit matches", model=model_a, model_b=model_b.name,
        model_b_spec=model_b.spec.to_dict() if getattr(model_b, "spec", None) is not None else None,
        layers_a=matches.layers_a, layers_b=matches.layers_b, source=matches.source, images=matches.images,
        match=matches.manifest.get("config", {}), sheet=config,
        shown=[{"unit_a": p.unit_a, "unit_b": p.unit_b, "correlation": p.correlation} for p in pairs],
        files=[p.name for p in paths])
    paths.append(write_json(folder / MANIFEST, manifest))
    return paths


def describe(matches: UnitMatches) -> list[tuple[str, ...]]:
    """A table (header first): each layer of A, the layer of B at the nearest relative depth
    with their CKA and mean best-match correlations, and the layer of B of highest CKA."""
    rows = [("layer of A", "depth", "matched layer of B", "depth", "CKA", "best r A->B", "best r B->A", "highest CKA in B")]
    mean_ab, mean_ba = matches.mean_best, matches.mean_best_reverse
    for i, a in enumerate(matches.layers_a):
        j = matches.layers_b.index(matches.matched_layer(a))
        top, cka = matches.most_similar_layer(a) or (matches.layers_b[j], matches.cka[i, j])
        rows.append((a, f"{matches.depth_a[i]:.2f}", matches.layers_b[j], f"{matches.depth_b[j]:.2f}",
                     f"{matches.cka[i, j]:.3f}", f"{mean_ab[i, j]:.3f}", f"{mean_ba[i, j]:.3f}",
                     f"{top} ({cka:.3f})"))
    return rows
