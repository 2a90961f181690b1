"""HTML pages of a gallery, written from the build manifests with Jinja2 templates.

Every link is relative, so the output folder works from anywhere (a file:// URL, any static
server). Stable addresses: ``<model>/<layer>/<channel>.html`` and ``<model>/photos/<photo>.html``.
"""
from __future__ import annotations

import json
import math
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..attribution.unit_classes import CLASS_EXAMPLES
from ..images import file_safe
from ..manifest import atomic_write_bytes
from .compare_views import COMPARE, KEY, Comparisons, pair_slug
from .state import MANIFEST

ASSETS = ("style.css", "photo.js")
"""Files of ``static/`` every gallery carries at its root."""


def _environment() -> Environment:
    return Environment(loader=PackageLoader("neuronscope.gallery", "templates"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def photo_slug(name: str) -> str:
    """A photo's file name in the gallery (``chelsea``; ``holiday_beach.jpg`` for ``holiday/beach.jpg``)."""
    return file_safe(name.replace("/", "_"), limit=120)


class Pages:
    """Writes the pages of one model folder, and the gallery's index over every model folder."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.env = _environment()
        try:
            self.version = metadata.version("neuronscope")
        except metadata.PackageNotFoundError:
            self.version = "dev"

    def write_all(self, data: dict[str, Any], source: str) -> int:
        """Every page of the model in ``data`` (its manifest), then the index. Returns pages written."""
        model = data["model"]
        self.comparisons = Comparisons(model, self.out)
        layers = sorted(data["layers"], key=lambda name: data["layers"][name]["info"]["depth"])
        count = self._model_page(data, layers)
        for i, layer in enumerate(layers):
            neighbours = (layers[i - 1] if i else None, layers[i + 1] if i + 1 < len(layers) else None)
            count += self._layer_pages(data, layer, neighbours, source)
        depths = {name: record["info"]["depth"] for name, record in data["layers"].items()}
        for name, record in data["photos"].items():
            count += self._write(Path(model) / "photos" / f"{photo_slug(name)}.html", "photo.html", depth=2,
                                 crumbs=[(model, "../index.html"), (name, None)], model=model, name=name,
                                 slug=photo_slug(name), record=record, rendered=set(data["units"]),
                                 others=self.comparisons.caricatures(name, record, depths),
                                 explore=_explore_units(record, data["units"], photo_slug(name)))
        return count + self.write_index()

    def write_comparison(self, matches) -> int:
        """The page of two models side by side: their layers' similarity across depth."""
        slug = pair_slug(matches.model_a, matches.model_b)
        rows = []
        for i, a in enumerate(matches.layers_a):
            best, cka = matches.most_similar_layer(a) or (None, None)
            matched = matches.matched_layer(a)
            rows.append({"a": a, "b": best, "depth": float(matches.depth_a[i]), "cka": cka, "matched": matched,
                         "mean_best": _finite(matches.mean_best[i, matches.layers_b.index(matched)])})
        return self._write(Path(COMPARE) / f"{slug}.html", "compare.html", depth=1,
                           crumbs=[(f"{matches.model_a} vs {matches.model_b}", None)], a=matches.model_a,
                           b=matches.model_b, slug=slug, rows=rows, images=matches.images, source=matches.source,
                           manifest_href=f"{slug}/matches.json")

    def write_index(self) -> int:
        models = []
        for manifest in sorted(self.out.glob(f"*/{MANIFEST}")):
            data = json.loads(manifest.read_text())
            first = next(iter(data["units"]), None)
            thumb = None
            if first:
                layer, channel = first.rsplit(":", 1)
                thumb = f"{data['model']}/{layer}/{channel}/fv_0.png"
            models.append({"name": data["model"], "layers": len(data["layers"]), "units": len(data["units"]),
                           "photos": len(data["photos"]), "built": data["runs"][-1]["started"] if data["runs"] else "",
                           "thumb": thumb})
        for asset in ASSETS:
            atomic_write_bytes(self.out / asset, resources.files("neuronscope.gallery").joinpath(f"static/{asset}").read_bytes())
        pairs = [json.loads(p.read_text())["models"] for p in sorted((self.out / COMPARE).glob(f"*/{KEY}"))]
        comparisons = [{"a": a, "b": b, "href": f"{COMPARE}/{pair_slug(a, b)}.html"} for a, b in pairs
                       if (self.out / COMPARE / f"{pair_slug(a, b)}.html").exists()]
        return self._write(Path("index.html"), "index.html", depth=0, crumbs=[], models=models, comparisons=comparisons,
                           manifest_href=models[0]["name"] + "/manifest.json" if models else "#")

    def _model_page(self, data: dict[str, Any], layers: list[str]) -> int:
        model = data["model"]
        rows = []
        for name in layers:
            layer = data["layers"][name]
            info = layer["info"]
            rows.append({**info, "name": name, "grid": _grid(info),
                         "done": sum(1 for key in data["units"] if key.rsplit(":", 1)[0] == name),
                         "agreement": layer.get("agreement"), "classes": bool(layer.get("classes")),
                         "method": layer.get("class_method", "")})
        photos = [{"name": name, "slug": photo_slug(name),
                   "top": ", ".join(p["label"] for p in record["predictions"][:2])} for name, record in data["photos"].items()]
        return self._write(Path(model) / "index.html", "model.html", depth=1, crumbs=[(model, None)], model=model,
                           description=data.get("description", ""), layers=rows, photos=photos,
                           others=self.comparisons.others(), scores=_score_rows(data, layers))

    def _layer_pages(self, data: dict[str, Any], layer: str, around: tuple[str | None, str | None], source: str) -> int:
        model = data["model"]
        record = data["layers"][layer]
        info = {**record["info"], "name": layer, "grid": _grid(record["info"])}
        done = sorted(int(key.rsplit(":", 1)[1]) for key in data["units"] if key.rsplit(":", 1)[0] == layer)
        info["done"] = len(done)
        crumbs = [(model, "../index.html"), (layer, None)]
        polysemantic = record.get("polysemanticity", {})
        scores = record.get("scores", {})
        units = [{"channel": c, "quality": data["units"][f"{layer}:{c}"]["quality"],
                  "label": data["units"][f"{layer}:{c}"].get("label"), "cases": polysemantic.get(str(c)),
                  "score": scores.get("units", {}).get(str(c), {}).get("score")} for c in done]
        if polysemantic:  # most polysemantic-looking first
            units.sort(key=lambda u: -(u["cases"] if u["cases"] is not None else -1))
        count = self._write(Path(model) / layer / "index.html", "layer.html", depth=2, crumbs=crumbs, model=model,
                            layer=info, units=units, previous=around[0], next=around[1], sorted_by_cases=bool(polysemantic),
                            atlas=record.get("atlas"), dictionary=record.get("dictionary"),
                            features_layer=record.get("features_of", {}).get("layer"), scores=scores or None)
        if record.get("atlas"):
            count += self._write(Path(model) / layer / "atlas.html", "atlas.html", depth=2,
                                 crumbs=[(model, "../index.html"), (layer, "index.html"), ("atlas", None)],
                                 model=model, layer=layer, atlas=record["atlas"])
        basis, features = record.get("dictionary", {}), record.get("features_of", {})
        for i, c in enumerate(done):
            count += self._write(
                Path(model) / layer / f"{c}.html", "unit.html", depth=2,
                crumbs=[(model, "../index.html"), (layer, "index.html"), (str(c), None)],
                model=model, layer=layer, channel=c, kind=info["kind"], channels=info["channels"],
                record=data["units"][f"{layer}:{c}"], samples=len(data["units"][f"{layer}:{c}"]["fv"]), source=source,
                inputs=_linked(data, around[0], record.get("inputs", {}).get(str(c), [])), inputs_layer=around[0],
                outputs=_linked(data, around[1], record.get("outputs", {}).get(str(c), [])), outputs_layer=around[1],
                classes=record.get("classes", {}).get(str(c), []), class_examples=CLASS_EXAMPLES,
                class_method=record.get("class_method", "attribution"),
                similar=self.comparisons.similar(layer, c),
                neurons=_linked(data, basis.get("parent"), record.get("made_of", {}).get(str(c), [])),
                neurons_layer=basis.get("parent"),
                features=_linked(data, features.get("layer"), features.get("units", {}).get(str(c), [])),
                features_layer=features.get("layer"),
                score=scores.get("units", {}).get(str(c)), similarity=scores.get("similarity"),
                previous=done[i - 1] if i else None, next=done[i + 1] if i + 1 < len(done) else None)
        return count

    def _write(self, path: Path, template: str, depth: int, **context: Any) -> int:
        root = "../" * depth
        context.setdefault("manifest_href", root + (f"{context['model']}/" if "model" in context else "") + MANIFEST)
        html = self.env.get_template(template).render(root=root, version=self.version, **context)
        atomic_write_bytes(self.out / path, html.encode())
        return 1


def _score_rows(data: dict[str, Any], layers: list[str]) -> list[dict[str, Any]]:
    """The model page's table of scores: each scored layer's mean of every kind (empty: none scored)."""
    rows = []
    for name in layers:
        scores = data["layers"][name].get("scores")
        if scores and "key" in scores:  # a layer of the network (a feature layer's scores are in its parent's means)
            rows.append({"name": name, **scores["means"], "channels": len(scores["units"]),
                         **{key: scores.get(key) for key in ("random_scored", "similarity", "tasks", "references")}})
    return rows


def _explore_units(record: dict[str, Any], units: dict[str, Any], slug: str) -> dict[str, Any] | None:
    """What a photo's interface needs to know of the rest of the gallery: the units of its layers
    that have a page (their pictures are shown and linked), and the semantic dictionary's icons."""
    interactive = record.get("interactive")
    if not interactive:
        return None
    layers = set(interactive["layers"])
    icons = record["dictionary"] or {}
    return {"slug": slug, "rendered": sorted(u for u in units if u.rsplit(":", 1)[0] in layers),
            "icons": {icons["layer"]: icons["channels"]} if icons else {}}


def _finite(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _grid(info: dict[str, Any]) -> str:
    """A layer's grid as rows x columns, or what a layer without one covers."""
    return "x".join(map(str, info["spatial"])) if info["spatial"] else "none (whole image)"


def _linked(data: dict[str, Any], layer: str | None, items: list) -> list[dict[str, Any]]:
    """Neighbour units with a link and thumbnail where that unit has a page, else (in galleries
    that have them) the unit's strongest dataset example as its picture."""
    linked = []
    examples = data["layers"].get(layer, {}).get("top_examples") if layer is not None else None
    for channel, strength, *share in items:  # share: galleries built since neighbour shares
        shown = layer is not None and f"{layer}:{channel}" in data["units"]
        linked.append({"channel": channel, "strength": strength, "share": share[0] if share else None,
                       "href": f"../{layer}/{channel}.html" if shown else None,
                       "thumb": f"../{layer}/{channel}/fv_0.png" if shown else None,
                       "example": f"../{layer}/{examples}/{channel}.png" if examples else None})
    return linked
