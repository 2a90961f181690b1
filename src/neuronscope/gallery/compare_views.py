"""Galleries of several models side by side: their units matched (``comparison.UnitMatching``
in the build's one pass over its image source, every pair of models once), each unit's most similar units in the
other models, a model-vs-model page with the layer similarity heatmap, and photo pages with the
other models' caricatures of the same photo at matched depth.

    build_galleries(["efficientnet_lite0", "efficientnet_lite1"], GalleryConfig(), "gallery")

Matches are stored in ``<out>/compare/<A>--<B>/`` (``matches.npz``, ``matches.json``,
``similarity.png``) with the key of what they were computed from (both models' weights and
gallery layers, the image source): a later build reuses them until one of those changes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..comparison import UnitMatches
from ..comparison.match import finish_matching, unit_matching
from ..images import save_png
from ..manifest import stable_hash, write_json
from ..models.depth import nearest_depth
from ..models.digest import weights_digest
from ..models.model import Model
from ..stream import PassResult
from .state import MANIFEST

COMPARE = "compare"
"""The folder of the comparisons, beside the models' folders."""
SIMILAR = 3
"""Units listed per other model on a unit page."""
KEY = "built.json"


class PairMatches:
    """The matches of two models' gallery layers, stored in ``<out>/compare/<A>--<B>`` with the key
    of what they come from, and reused until that changes; otherwise matched in the build's pass:

        pair = PairMatches(a, b, layers_a, layers_b, source, out)
        accumulator = pair.accumulator()        # None when the stored matches still hold
        ... stream(source, [accumulator, ...]) ...
        matches = pair.finish(result)           # saved, with the similarity heatmap
    """

    def __init__(self, a: Model, b: Model, layers_a: list[str], layers_b: list[str], source, out: Path) -> None:
        self.folder = out / COMPARE / pair_slug(a.name, b.name)
        self.source = source
        self.key = stable_hash({"a": [a.name, weights_digest(a), layers_a], "b": [b.name, weights_digest(b), layers_b],
                                "source": source.fingerprint()})
        stored = self.folder / KEY
        fresh = stored.exists() and json.loads(stored.read_text()).get("key") == self.key
        self.matching = None if fresh else unit_matching(a, b, layers_a, layers_b)
        self.names = [a.name, b.name]

    def accumulator(self):
        return self.matching

    def finish(self, result: PassResult | None) -> UnitMatches:
        if self.matching is None:
            return UnitMatches.load(self.folder)
        matches = finish_matching(self.matching, self.source, result)
        matches.save(self.folder)
        save_png(self.folder / "similarity.png", matches.heatmap())
        write_json(self.folder / KEY, {"key": self.key, "models": self.names})  # last: the pair is complete
        self.matching = None
        return matches


def pair_slug(a: str, b: str) -> str:
    return f"{a}--{b}"


def gallery_manifest(model: str, out: Path) -> dict[str, Any]:
    """The manifest of ``model``'s gallery in ``out``."""
    return json.loads((out / model / MANIFEST).read_text())


class Comparisons:
    """What the pages of one model show of the others: read from ``<out>/compare`` once."""

    def __init__(self, model: str, out: Path) -> None:
        self.out, self.model = out, model
        self.pairs: list[tuple[UnitMatches, str]] = []  # (matches, this model's side "a" or "b")
        for stored in sorted((out / COMPARE).glob(f"*/{KEY}")):
            names = json.loads(stored.read_text()).get("models", [])
            if model in names:
                self.pairs.append((UnitMatches.load(stored.parent), "a" if names[0] == model else "b"))
        self._manifests: dict[str, dict[str, Any]] = {}
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
            found = matches.matches(f"{layer}:{channel}", k=SIMILAR, side=side)[best_layer]
            rendered = self._rendered(name)
            examples = self._top_examples(name, best_layer)
            units = [{"channel": c, "correlation": r,
                      "href": f"../../{name}/{best_layer}/{c}.html" if f"{best_layer}:{c}" in rendered else None,
                      "thumb": f"../../{name}/{best_layer}/{c}/fv_0.png" if f"{best_layer}:{c}" in rendered else None,
                      "example": f"../../{name}/{best_layer}/{examples}/{c}.png" if examples else None}
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
            data = gallery_manifest(name, self.out)
            theirs = (data["photos"].get(photo) or {}).get("caricatures")
            if not theirs:
                continue
            depth_of = {c["layer"]: data["layers"][c["layer"]]["info"]["depth"] for c in theirs}
            by_layer = {c["layer"]: c for c in theirs}
            chosen = [by_layer[nearest_depth(depth_of, depths[mine["layer"]])] for mine in record["caricatures"]]
            rows.append({"model": name, "caricatures": [{**c, "depth": depth_of[c["layer"]]} for c in chosen]})
        return rows

    def _top_examples(self, model: str, layer: str) -> str | None:
        """The folder of ``layer``'s strongest examples in ``model``'s gallery, if it has one."""
        return self._manifest(model).get("layers", {}).get(layer, {}).get("top_examples")

    def _rendered(self, model: str) -> set[str]:
        if model not in self._units:
            self._units[model] = set(self._manifest(model).get("units", {}))
        return self._units[model]

    def _manifest(self, model: str) -> dict[str, Any]:
        """``model``'s gallery manifest, read once ({} when that gallery is gone)."""
        if model not in self._manifests:
            found = (self.out / model / MANIFEST).exists()
            self._manifests[model] = gallery_manifest(model, self.out) if found else {}
        return self._manifests[model]

    def _other(self, matches: UnitMatches, side: str) -> str:
        return matches.model_b if side == "a" else matches.model_a
