"""Galleries of several models side by side: their units matched (``comparison.match_units``
over the gallery's image source, every pair of models once), each unit's most similar units in the
other models, a model-vs-model page with the layer similarity heatmap, and photo pages with the
other models' caricatures of the same photo at matched depth.

    build_galleries("gallery", GalleryConfig(), ["efficientnet_lite0", "efficientnet_lite1"])  # gallery.multi

Matches are stored in ``<out>/compare/<A>--<B>/`` (``matches.npz``, ``matches.json``,
``similarity.png``) with the key of what they were computed from (both models' weights and
gallery layers, the image source): a later build reuses them until one of those changes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..comparison import MatchConfig, UnitMatches, match_units
from ..images import save_png
from ..manifest import stable_hash, write_json
from ..models.digest import weights_digest
from ..models.model import Model
from .state import MANIFEST

COMPARE = "compare"
"""The folder of the comparisons, beside the models' folders."""
SIMILAR = 3
"""Units listed per other model on a unit page."""
KEY = "built.json"


def compare_pair(out: Path, a: Model, b: Model, source, progress: bool = True) -> UnitMatches:
    """The matches of two built galleries' layers, computed once per key and stored."""
    folder = out / COMPARE / pair_slug(a.name, b.name)
    layers_a, layers_b = gallery_layers(out, a.name), gallery_layers(out, b.name)
    key = stable_hash({"a": [a.name, weights_digest(a), layers_a], "b": [b.name, weights_digest(b), layers_b],
                       "source": source.fingerprint()})
    stored = folder / KEY
    if stored.exists() and json.loads(stored.read_text()).get("key") == key:
        return UnitMatches.load(folder)
    matches = match_units(a, b, layers_a, layers_b, source, MatchConfig(progress=progress))
    matches.save(folder)
    save_png(folder / "similarity.png", matches.heatmap())
    write_json(stored, {"key": key, "models": [a.name, b.name]})  # last: the pair is complete
    return matches


def pair_slug(a: str, b: str) -> str:
    return f"{a}--{b}"


def gallery_layers(out: Path, model: str) -> list[str]:
    """A built gallery's layers with a grid (the ones units are matched on), shallow to deep."""
    layers = read_manifest(out, model)["layers"]
    shown = [name for name, record in layers.items() if record.get("info", {}).get("spatial")]
    return sorted(shown, key=lambda name: layers[name]["info"]["depth"])


def read_manifest(out: Path, model: str) -> dict[str, Any]:
    return json.loads((out / model / MANIFEST).read_text())


class Comparisons:
    """What the pages of one model show of the others: read from ``<out>/compare`` once."""

    def __init__(self, out: Path, model: str) -> None:
        self.out, self.model = out, model
        self.pairs: list[tuple[UnitMatches, str]] = []  # (matches, this model's side "a" or "b")
        for stored in sorted((out / COMPARE).glob(f"*/{KEY}")):
            names = json.loads(stored.read_text()).get("models", [])
            if model in names:
                self.pairs.append((UnitMatches.load(stored.parent), "a" if names[0] == model else "b"))
        self._units: dict[str, set[str]] = {}

    def others(self) -> list[dict[str, Any]]:
        """The models compared with this one, with the comparison page's address (from the root)."""
        return [{"name": self._other(m, side), "href": f"{COMPARE}/{pair_slug(m.model_a, m.model_b)}.html"}
                for m, side in self.pairs]

    def similar(self, layer: str, channel: int) -> list[dict[str, Any]]:
        """For each other model: its gallery layer most similar to ``layer`` (linear CKA) and there
        the ``SIMILAR`` units best correlated with this unit, with links where they have a page."""
        strips = []
        for matches, side in self.pairs:
            own = matches.layers_a if side == "a" else matches.layers_b
            found = matches.most_similar_layer(layer, side) if layer in own else None
            if found is None:
                continue
            best_layer, cka = found
            name = self._other(matches, side)
            found = matches.matches(f"{layer}:{channel}", k=SIMILAR, model=side)[best_layer]
            rendered = self._rendered(name)
            units = [{"channel": c, "correlation": r,
                      "href": f"../../{name}/{best_layer}/{c}.html" if f"{best_layer}:{c}" in rendered else None,
                      "thumb": f"../../{name}/{best_layer}/{c}/fv_0.png" if f"{best_layer}:{c}" in rendered else None}
                     for c, r in found]
            strips.append({"model": name, "layer": best_layer, "cka": cka, "units": units})
        return strips

    def caricatures(self, photo: str, record: dict[str, Any], depths: dict[str, float]) -> list[dict[str, Any]]:
        """For each other model with a page for ``photo``: its caricatures at the depths nearest
        this page's layers (``depths``: this model's layer -> relative depth)."""
        rows = []
        for matches, side in self.pairs:
            name = self._other(matches, side)
            if not (self.out / name / MANIFEST).exists():  # that model's folder is gone
                continue
            data = read_manifest(self.out, name)
            theirs = (data["photos"].get(photo) or {}).get("caricatures")
            if not theirs:
                continue
            depth_of = {c["layer"]: data["layers"][c["layer"]]["info"]["depth"] for c in theirs}
            chosen = [min(theirs, key=lambda c: abs(depth_of[c["layer"]] - depths[mine["layer"]]))
                      for mine in record["caricatures"]]
            rows.append({"model": name, "caricatures": [{**c, "depth": depth_of[c["layer"]]} for c in chosen]})
        return rows

    def _rendered(self, model: str) -> set[str]:
        if model not in self._units:
            found = (self.out / model / MANIFEST).exists()
            self._units[model] = set(read_manifest(self.out, model)["units"]) if found else set()
        return self._units[model]

    def _other(self, matches: UnitMatches, side: str) -> str:
        return matches.model_b if side == "a" else matches.model_a
