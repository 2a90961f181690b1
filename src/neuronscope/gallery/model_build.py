"""One model's part of a build: its plan and manifest, what it asks of the shared pass, and the
steps after the pass (weights, renders, class views, mechanics, atlases, photo pages), each
recorded in the manifest when done. Analysis comes from the library; this module writes files."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..atlas import AtlasSamples
from ..attribution.method import TRUSTED, best_method, method_agreements
from ..attribution.unit_classes import CLASS_EXAMPLES, unit_classes
from ..circuits.decompose import previous_layer
from ..circuits.polysemanticity import CASE_IMAGES, polysemanticity
from ..data.loading import Preparer
from ..data.photos import PHOTOS, load_image
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples import ExamplesConfig, ExamplesPass, LayerExamples, crop_extent
from ..examples.inputs import ExampleImages
from ..featurevis.batching import batch_cap
from ..models.model import Model
from ..models.zoo import ZOO
from ..names import LOGITS
from ..stream import PassResult
from .atlas_views import atlas_config, atlas_view
from .class_views import Judges, judge_names
from .config import DEFAULT_PHOTOS, GalleryConfig
from .engine import Engine
from .feature_views import feature_records
from .layer_views import neighbours
from .mechanics_views import decomposition_views
from .pages import photo_slug
from .photo_views import photo_views, prefetch_icons, read_photo
from .plan import Plan, chunks, make_plan, network, spatial
from .score_views import check_source, features_of, layer_records, score_key, score_layer, scored_units, visualizations
from .state import BuildState
from .unit_views import write_chunk, write_top_examples

PHOTO_WEIGHT = 8
"""A photo page counts as this many units on the progress bar (about as long to make)."""
CLASS_DEPTH = 0.5
"""Class views only in the deeper half of a model: below it every class spreads over generic
edges and textures (Building Blocks: very low layers are noisy) and the pass costs the most."""


@dataclass
class BuildSummary:
    """What one run did for one model, and where its time went (seconds; ``pass_s`` is the one
    pass over the image source, shared by every model of the build)."""

    folder: Path
    rendered: int = 0
    reused: int = 0
    photos: int = 0
    pages: int = 0
    skipped_images: list[tuple[str, str]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)


class ModelBuild:
    """One model's gallery in ``out/<model>``: open it (taking its lock), hand ``accumulators`` to
    the shared pass, ``take`` the pass's results, then ``run`` the rest."""

    def __init__(self, model: Model, config: GalleryConfig, source: ImageSource, out: Path) -> None:
        self.model, self.config, self.source = model, config, source
        self.plan: Plan = make_plan(model, config.layers, config.units, config.classes)
        self.photos = _photo_names(config, source)
        if config.scores is not None:
            check_source(source, config.scores)
        self.folder = out / model.name
        self.summary = BuildSummary(self.folder)
        self.state: BuildState | None = None
        self.examples: ExamplesPass | None = None
        self.atlas_samples: dict[str, AtlasSamples] = {}
        self.found: dict[str, LayerExamples] = {}
        self.images: ExampleImages | None = None

    def __enter__(self) -> ModelBuild:
        self.state = BuildState(self.model, {**self.config.pinned(self.model), "source": self.source.fingerprint()}, self.folder)
        self.state.data["description"] = _description(self.model, self.source)
        return self

    def __exit__(self, *exc) -> None:
        self.state.release()

    # --- what the pass collects --------------------------------------------------------------

    @property
    def gallery_layers(self) -> list[str]:
        """Every spatial layer of the gallery (of earlier builds too), shallow to deep."""
        known = [name for name, record in self.state.data["layers"].items()
                 if record.get("info", {}).get("spatial") and _knows(self.model, name)]
        return sorted(set(known) | set(spatial(self.model, self.plan.layers)), key=self._order)

    def accumulators(self) -> list:
        """What this model needs from the shared pass: dataset examples of its layers (those not
        cached already) and atlas samples of the layers whose atlas is still to make."""
        layers = list(dict.fromkeys([*self.plan.layers, *self.gallery_layers]))
        self.examples = ExamplesPass(self.model, self.source, layers, ExamplesConfig(k=self.config.examples, progress=False),
                                     cache_dir=self.folder / "_cache" / "examples")
        if self.config.atlas:
            for layer in network(self.model, self.plan.layers):
                if "atlas" not in self.state.layer(layer):
                    self.atlas_samples[layer] = AtlasSamples(self.model, layer, atlas_config(self.model, self.config, self.source))
        found = [*self.atlas_samples.values()]
        return [self.examples.accumulator, *found] if self.examples.accumulator is not None else found

    def take(self, result: PassResult | None) -> None:
        """The pass's results (None: nothing was asked of it)."""
        if result is not None:
            self.examples.finish(result)
            self.summary.skipped_images = list(result.skipped)
        self.found = self.examples.results
        for layer in self.plan.layers:
            info = self.model.layer(layer)
            field, crop = self.found[layer].field_size, crop_extent(self.model, layer)
            self.state.layer(layer)["info"] = {
                "kind": info.kind, "channels": info.channels, "spatial": list(info.spatial or ()),
                "depth": round(self.model.depth(layer), 4), "receptive_field": "x".join(map(str, field)) if field else "all",
                "crop": "x".join(map(str, crop)) if crop else "all"}
        for layer, record in feature_records(self.model, {name: self._shown(name) for name in self.plan.layers}).items():
            self.state.layer(layer).update(record)
        self.state.save()

    # --- what the views after the pass read from the source ----------------------------------

    def wanted(self) -> tuple[dict[Preparer, set[str]], set[str]]:
        """The source items the steps after the pass read (each prepared for this model), and the
        photo pages' items that come from the source (decoded as they are)."""
        keys: set[str] = set()
        for layer in self.plan.layers:
            examples = self.found[layer]
            for c in self._pending(layer):
                keys.update(e.key for e in examples.top(c))
                if examples.bottom_values is not None:
                    keys.update(e.key for e in examples.bottom(c))
            record = self.state.layer(layer)
            if self._has_class_views(layer) and ("class_method" not in record or record["agreement"] >= TRUSTED):
                known = record.get("classes", {}) if "class_method" in record else {}
                for c in self.plan.channels[layer]:
                    if str(c) not in known:
                        keys.update(e.key for e in examples.top(c)[:CLASS_EXAMPLES])
                if not self.photos and "class_method" not in record:
                    keys.add(examples.keys[0])
            shown = self._shown(layer)
            if self.config.mechanics and layer in network(self.model, self.plan.layers) and \
                    sorted(map(int, record.get("polysemanticity", {}))) != shown:
                keys.update(list(dict.fromkeys(e.key for c in shown for e in examples.top(c)))[:CASE_IMAGES])
        for layer in self.gallery_layers:
            if not self.state.layer(layer).get("top_examples"):
                keys.update(self.found[layer].top(c)[0].key for c in range(self.found[layer].channels))
        raw = {name for name in self._pending_photos() if not _outside_source(name)}
        return {Preparer.of(self.model): keys}, raw

    # --- the steps after the pass --------------------------------------------------------------

    def run(self, images: ExampleImages, engine: Engine) -> None:
        plan, state = self.plan, self.state
        self.images = images
        self.judges = Judges(self.model, judge_names(self.model, self.config))
        pending = {layer: self._pending(layer) for layer in plan.layers}
        grids = network(self.model, plan.layers)
        pairs = [(a, b) for a, b in zip(grids, grids[1:]) if state.layer(b).get("inputs_from") != a
                 or state.layer(a).get("outputs_to") != b or not _with_shares(state.layer(b).get("inputs"))]
        shown = self._photo_layers()
        photos = self._pending_photos()
        self.summary.reused = len(plan.units) - sum(map(len, pending.values()))
        total = len(pairs) + sum(map(len, pending.values())) + len(plan.layers) + PHOTO_WEIGHT * len(photos)
        bar = tqdm(total=total, desc=f"gallery {self.model.name}", unit="task", disable=not self.config.progress)
        try:
            for earlier, later in pairs:
                with self._timed("weights_s"):
                    self._neighbours(earlier, later)
                bar.update(1)
            size = max(1, batch_cap(self.config.render, self.model.device) // self.config.samples)
            jobs = [(layer, channels) for layer in plan.layers for channels in chunks(pending[layer], size)]
            if jobs:
                bar.set_postfix_str(f"rendering {len(jobs)} chunks ({engine.name})")
            with self._timed("render_s"):
                for chunk in engine.render(self.model, jobs, self.config):
                    self._write_chunk(chunk)
                    bar.update(len(chunk.channels))
            with self._timed("examples_s"):  # after the renders: pages only need them at the end
                self._top_examples()
            for layer in plan.layers:
                with self._timed("classes_s"):
                    self._classes(layer)
                if self.config.mechanics and layer in grids:
                    with self._timed("mechanics_s"):
                        self._mechanics(layer, size)
                if self.config.scores is not None and layer in grids:
                    with self._timed("scores_s"):
                        self._scores(layer, engine)
                if layer in self.atlas_samples:
                    with self._timed("atlas_s"):
                        state.record_layer(layer, "atlas", atlas_view(
                            self.model, self.source, layer, self.config, state.folder / layer / "atlas",
                            self.atlas_samples.pop(layer).finish()))
                bar.update(1)
            pictures = {name: self._photo_image(name) for name in photos}
            readings = {}
            if photos:
                bar.set_postfix_str("dictionary icons")
                with self._timed("photos_s"):
                    readings = {name: read_photo(self.model, picture, shown) for name, picture in pictures.items()}
                    prefetch_icons(self.model, list(readings.values()), shown, self.config,
                                   state.folder / "_cache" / "icons")
            for name in photos:
                bar.set_postfix_str(name)
                with self._timed("photos_s"):
                    record = photo_views(self.model, pictures[name], readings[name], shown, self.config,
                                         state.folder / "photos" / photo_slug(name), state.folder / "_cache" / "icons")
                state.record_photo(name, record)
                self.summary.photos += 1
                bar.update(PHOTO_WEIGHT)
        finally:
            bar.close()

    def _write_chunk(self, chunk) -> None:
        layer = chunk.layer
        records = write_chunk(self.model, chunk, self.config, self.state.folder / layer, self.found[layer],
                              self.images, self.source, crop_extent(self.model, layer))
        if layer == LOGITS:
            for (_, c), record in records.items():
                record["label"] = self.model.labels[c] if self.model.labels else str(c)
                record["judges"] = self.judges.verdicts(
                    [self.state.folder / layer / str(c) / name for name in record["fv"]], c)
        self.state.record_units(records)
        self.summary.rendered += len(chunk.channels)

    def _neighbours(self, earlier: str, later: str) -> None:
        inputs, outputs, window = neighbours(self.model, earlier, later)
        self.state.layer(later).update(inputs=inputs, inputs_from=earlier, window=window)
        self.state.layer(earlier).update(outputs=outputs, outputs_to=later)
        self.state.save()

    def _top_examples(self) -> None:
        """Every channel's strongest dataset example of every gallery layer, as a small picture
        (shown for units that have no page: neighbours in weight strips, similar units)."""
        for layer in self.gallery_layers:
            if not self.state.layer(layer).get("top_examples"):
                folder = write_top_examples(self.model, self.found[layer], self.images, crop_extent(self.model, layer),
                                            self.state.folder / layer)
                self.state.record_layer(layer, "top_examples", folder)

    def _classes(self, layer: str) -> None:
        record = self.state.layer(layer)
        if not self._has_class_views(layer):
            return
        examples = self.found[layer]
        if "class_method" not in record:  # galleries built before integrated gradients measure again
            first = self._photo_image(self.photos[0]) if self.photos else self.images.inputs(self.model)(examples.keys[0])
            found = method_agreements(self.model, first, layer)
            method = best_method(found)
            record.pop("classes", None)
            record.update(agreements=found, class_method=method)
            self.state.record_layer(layer, "agreement", found[method])
        if record["agreement"] < TRUSTED:
            return
        known = record.setdefault("classes", {})
        missing = [c for c in self.plan.channels[layer] if str(c) not in known]
        if missing:
            found = unit_classes(self.model, examples, missing, self.images.inputs(self.model), method=record["class_method"])
            known.update({str(c): v for c, v in found.items()})
            self.state.save()

    def _mechanics(self, layer: str, size: int) -> None:
        """Decompositions of the layer's units that lack one (a chunk at a time), then the
        polysemanticity of every unit shown, measured again when units were added."""
        units = self.state.data["units"]
        missing = [c for c in self.plan.channels[layer] if "decomposition" not in units[f"{layer}:{c}"]]
        try:
            previous_layer(self.model, layer)
        except NeuronscopeError:  # the first spatial layer: nothing before it to build it from
            return
        for channels in chunks(missing, size):
            found = decomposition_views(self.model, layer, channels, self.config, self.state.folder / layer)
            for c, record in found.items():
                units[f"{layer}:{c}"]["decomposition"] = record
            self.state.save()
        shown = self._shown(layer)
        known = self.state.layer(layer).get("polysemanticity", {})
        if sorted(map(int, known)) != shown:
            found = polysemanticity(self.model, self.found[layer], shown, self.images.inputs(self.model))
            self.state.record_layer(layer, "polysemanticity", {str(c): v for c, v in found.items()})

    def _scores(self, layer: str, engine: Engine) -> None:
        """Score every channel of ``layer``, its random directions and its shown features in one
        call (its pass run by ``engine``), unless the layer's recorded scores were made with the
        same settings, units and pictures."""
        units, feature_layer = scored_units(self.model, layer, self._shown(features_of(layer)))
        records = self.state.data["units"]
        pictured = [unit for unit in [f"{layer}:{c}" for c in self._shown(layer)] + units if unit in records]
        key = score_key(self.config.scores, self.state.data["settings"]["source"], units, pictured)
        if self.state.layer(layer).get("scores", {}).get("key") == key:
            return
        scores = score_layer(self.model, self.source, layer, units, self.config.scores,
                             visualizations(self.state.folder, records, pictured), self.folder / "_cache" / "examples",
                             engine.pass_runner())
        for name, record in layer_records(scores, layer, feature_layer, key).items():
            self.state.layer(name)["scores"] = record
        self.state.save()

    # --- helpers -------------------------------------------------------------------------------

    def _has_class_views(self, layer: str) -> bool:
        return self.model.num_classes is not None and self.model.depth(layer) >= CLASS_DEPTH and layer != LOGITS

    def _pending(self, layer: str) -> list[int]:
        return [c for c in self.plan.channels[layer] if not self.state.unit_done(layer, c)]

    def _shown(self, layer: str) -> list[int]:
        """The layer's units with a page: rendered before, or in this run's plan."""
        done = {int(key.rsplit(":", 1)[1]) for key in self.state.data["units"] if key.rsplit(":", 1)[0] == layer}
        return sorted(done | set(self.plan.channels.get(layer, ())))

    def _photo_layers(self) -> list[str]:
        """Every spatial layer of the gallery, which the photo pages show."""
        known = {name for name in self.state.data["layers"] if _knows(self.model, name)}
        return sorted(network(self.model, known | set(self.plan.layers)), key=self._order)

    def _pending_photos(self) -> list[str]:
        """Photos whose page is missing, was made for other layers, or before it had its interface."""
        shown = self._photo_layers()
        return [name for name in self.photos
                if (self.state.photo(name) or {}).get("layers") != shown or "interactive" not in self.state.photo(name)]

    def _photo_image(self, name: str):
        """A photo page's image: a bundled photo, a file, or an item of the source by key."""
        return load_image(name) if _outside_source(name) else self.images.raw(name)

    def _order(self, layer: str) -> tuple[float, bool]:
        """Shallow to deep, a derived layer right after its parent."""
        return self.model.depth(layer), layer in self.model.derived

    def _timed(self, key: str):
        return timed(self.summary, key)


@contextmanager
def timed(summary: BuildSummary, key: str):
    """Add the time spent inside to ``summary.timing[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        summary.timing[key] = summary.timing.get(key, 0.0) + time.perf_counter() - start


def _knows(model: Model, layer: str) -> bool:
    """Whether ``model`` has ``layer`` (a gallery resumed without ``features`` lacks its feature layers)."""
    try:
        model.layer(layer)
    except NeuronscopeError:
        return False
    return True


def _with_shares(inputs: dict | None) -> bool:
    """Whether a layer's recorded input strips carry shares (galleries built before shares: no;
    their strips are recomputed, which takes seconds and renders nothing)."""
    first = next(iter((inputs or {}).values()), None)
    return bool(first) and len(first[0]) == 3


def _outside_source(name: str) -> bool:
    return name in PHOTOS or Path(name).is_file()


def _description(model: Model, source: ImageSource) -> str:
    entry = ZOO.get(model.name)
    size = "x".join(map(str, model.input_size))
    what = f"{entry.description}; " if entry else ""
    return f"{what}input {size}; dataset examples from {source.name}."


def _photo_names(config: GalleryConfig, source: ImageSource) -> list[str]:
    if config.photos == ("all",):
        return list(PHOTOS) if config.source in (None, "photos") else list(source.keys())
    if config.photos is not None:
        return list(config.photos)
    if config.source in (None, "photos"):
        return list(DEFAULT_PHOTOS)
    return list(source.keys()[:3])

