"""``build_gallery``: plan the work, skip what the manifest says is done, do the rest in chunks
with one progress bar, and write the pages. Killing a build loses at most the chunk in progress."""
from __future__ import annotations

import errno
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..circuits.decompose import previous_layer
from ..data.photos import PHOTOS, load_image
from ..data.resolve import resolve_source
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples.topk import ExamplesConfig, dataset_examples
from ..featurevis.batching import batch_cap
from ..models import load
from ..models.model import Model
from ..models.zoo import ZOO
from ..names import LOGITS
from .atlas_views import atlas_view
from .class_views import Judges, judge_names
from .config import DEFAULT_PHOTOS, GalleryConfig
from .engine import Engine, LocalEngine
from .layer_views import (
    AGREEMENT,
    CLASS_DEPTH,
    agreements,
    best_method,
    neighbours,
    unit_classes,
)
from .mechanics_views import decomposition_views, polysemanticity
from .pages import Pages, photo_slug
from .photo_views import photo_views, prefetch_icons
from .plan import Plan, chunks, make_plan, spatial
from .state import BuildState
from .unit_views import crop_extent, write_chunk

PHOTO_WEIGHT = 8
"""A photo page counts as this many units on the progress bar (about as long to make)."""


@dataclass
class BuildSummary:
    """What one run did, and where its time went (seconds)."""

    folder: Path
    rendered: int = 0
    reused: int = 0
    photos: int = 0
    pages: int = 0
    skipped_images: list[tuple[str, str]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)


def build_gallery(out: str | Path, config: GalleryConfig | None = None, model: Model | None = None,
                  engine: Engine | None = None) -> BuildSummary:
    """Build (or extend, or resume) the gallery of ``config.model`` (default: ``GalleryConfig()``)
    in ``out``; ``model`` saves loading it again. ``engine`` does the examples pass and the
    rendering (default ``LocalEngine()``: this process; ``neuronscope.scale.RayEngine`` for a
    cluster); pages and the manifest are written here either way."""
    out = Path(out)
    config = config or GalleryConfig()
    if out.exists() and not out.is_dir():
        raise NeuronscopeError(f"--out '{out}' is a file, not a folder")
    model = model or load(config.model)
    plan = make_plan(model, config.layers, config.units, config.classes)
    source = resolve_source(config.source)
    photos = _photo_names(config, source)
    folder = out / model.name
    with _disk_errors(out):
        state = BuildState(folder, model, {**config.pinned(model), "source": source.fingerprint()})
        state.data["description"] = _description(model, source)
        try:
            summary = BuildSummary(folder)
            _Build(model, plan, source, photos, config, state, summary, engine or LocalEngine()).run()
            with _timed(summary, "pages_s"):
                summary.pages = Pages(out).write_all(state.data, source.name)
            state.finish({"rendered": summary.rendered, "photos": summary.photos, "timing": summary.timing})
        finally:
            state.release()
    summary.skipped_images = list(source.skipped)
    return summary


class _Build:
    """One run's steps over a plan; each step records its results in the manifest when done."""

    def __init__(self, model: Model, plan: Plan, source: ImageSource, photos: list[str], config: GalleryConfig,
                 state: BuildState, summary: BuildSummary, engine: Engine) -> None:
        self.model, self.plan, self.source, self.photos = model, plan, source, photos
        self.config, self.state, self.summary, self.engine = config, state, summary, engine
        self.judges = Judges(model, judge_names(model, config))

    def run(self) -> None:
        plan, state = self.plan, self.state
        pending = {layer: [c for c in plan.channels[layer] if not state.unit_done(layer, c)] for layer in plan.layers}
        grids = spatial(self.model, plan.layers)
        pairs = [(a, b) for a, b in zip(grids, grids[1:]) if state.layer(b).get("inputs_from") != a
                 or state.layer(a).get("outputs_to") != b]
        # every spatial layer of the gallery, which the photo pages show
        shown = sorted(spatial(self.model, set(state.data["layers"]) | set(plan.layers)), key=self.model.depth)
        photos = [name for name in self.photos if (state.photo(name) or {}).get("layers") != shown]
        self.summary.reused = len(plan.units) - sum(map(len, pending.values()))
        total = 1 + len(pairs) + sum(map(len, pending.values())) + len(plan.layers) + PHOTO_WEIGHT * len(photos)
        bar = tqdm(total=total, desc=f"gallery {self.model.name}", unit="task", disable=not self.config.progress)
        try:
            bar.set_postfix_str(f"dataset examples from {self.source.name}")
            with self._timed("examples_s"):
                examples, extents = self._examples()
            bar.update(1)
            for earlier, later in pairs:
                with self._timed("weights_s"):
                    self._neighbours(earlier, later)
                bar.update(1)
            size = max(1, batch_cap(self.config.render, self.model.device) // self.config.samples)
            jobs = [(layer, channels) for layer in plan.layers for channels in chunks(pending[layer], size)]
            if jobs:
                bar.set_postfix_str(f"rendering {len(jobs)} chunks ({self.engine.name})")
            with self._timed("render_s"):
                for chunk in self.engine.render(self.model, jobs, self.config):
                    layer = chunk.layer
                    records = write_chunk(self.model, chunk, self.config, state.folder / layer, examples[layer],
                                          self.source, extents[layer])
                    if layer == LOGITS:
                        for (_, c), record in records.items():
                            record["label"] = self.model.labels[c] if self.model.labels else str(c)
                            record["judges"] = self.judges.verdicts(
                                [state.folder / layer / str(c) / name for name in record["fv"]], c)
                    state.record_units(records)
                    self.summary.rendered += len(chunk.channels)
                    bar.update(len(chunk.channels))
            for layer in plan.layers:
                with self._timed("classes_s"):
                    self._classes(layer, examples[layer])
                if self.config.mechanics and layer in grids:
                    with self._timed("mechanics_s"):
                        self._mechanics(layer, examples[layer], size)
                if self.config.atlas and layer in grids and "atlas" not in state.layer(layer):
                    with self._timed("atlas_s"):
                        state.record_layer(layer, "atlas", atlas_view(self.model, layer, self.source, self.config,
                                                                      state.folder / layer / "atlas"))
                bar.update(1)
            images = {name: _photo_image(name, self.source) for name in photos}  # read once, used twice
            if photos:
                bar.set_postfix_str("dictionary icons")
                with self._timed("photos_s"):
                    prefetch_icons(self.model, list(images.values()), shown, self.config,
                                   state.folder / "_cache" / "icons")
            for name in photos:
                bar.set_postfix_str(name)
                with self._timed("photos_s"):
                    record = photo_views(self.model, images[name], shown, self.config,
                                         state.folder / "photos" / photo_slug(name), state.folder / "_cache" / "icons")
                state.record_photo(name, record)
                self.summary.photos += 1
                bar.update(PHOTO_WEIGHT)
        finally:
            bar.close()

    def _examples(self) -> tuple[dict, dict]:
        """Every layer's dataset examples (one pass, cached) and the size of their crops."""
        config = ExamplesConfig(k=self.config.examples, progress=False)
        examples = dataset_examples(self.model, list(self.plan.layers), self.source, config,
                                    cache_dir=self.state.folder / "_cache" / "examples",
                                    runner=self.engine.examples_runner())
        extents = {}
        for layer in self.plan.layers:
            info = self.model.layer(layer)
            field, crop = examples[layer].field_size, crop_extent(self.model, layer)
            extents[layer] = crop
            self.state.layer(layer)["info"] = {"kind": info.kind, "channels": info.channels, "spatial": list(info.spatial or ()),
                                               "depth": round(self.model.depth(layer), 4),
                                               "receptive_field": "x".join(map(str, field)) if field else "all",
                                               "crop": "x".join(map(str, crop)) if crop else "all"}
        self.state.save()
        return examples, extents

    def _neighbours(self, earlier: str, later: str) -> None:
        inputs, outputs, window = neighbours(self.model, earlier, later)
        self.state.layer(later).update(inputs=inputs, inputs_from=earlier, window=window)
        self.state.layer(earlier).update(outputs=outputs, outputs_to=later)
        self.state.save()

    def _classes(self, layer: str, examples) -> None:
        record = self.state.layer(layer)
        if self.model.num_classes is None or self.model.depth(layer) < CLASS_DEPTH or layer == LOGITS:
            return
        if "class_method" not in record:  # galleries built before integrated gradients measure again
            first = _photo_image(self.photos[0], self.source) if self.photos else self.source.load(examples.keys[0])
            found = agreements(self.model, first, layer)
            method = best_method(found)
            record.pop("classes", None)
            record.update(agreements=found, class_method=method)
            self.state.record_layer(layer, "agreement", found[method])
        if record["agreement"] < AGREEMENT:
            return
        known = record.setdefault("classes", {})
        missing = [c for c in self.plan.channels[layer] if str(c) not in known]
        if missing:
            found = unit_classes(self.model, layer, missing, examples, self.source, method=record["class_method"])
            known.update({str(c): v for c, v in found.items()})
            self.state.save()

    def _mechanics(self, layer: str, examples, size: int) -> None:
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
        shown = sorted(int(key.rsplit(":", 1)[1]) for key in units if key.rsplit(":", 1)[0] == layer)
        known = self.state.layer(layer).get("polysemanticity", {})
        if sorted(map(int, known)) != shown:
            found = polysemanticity(self.model, layer, shown, examples, self.source)
            self.state.record_layer(layer, "polysemanticity", {str(c): v for c, v in found.items()})

    def _timed(self, key: str):
        return _timed(self.summary, key)


@contextmanager
def _timed(summary: BuildSummary, key: str):
    """Add the time spent inside to ``summary.timing[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        summary.timing[key] = summary.timing.get(key, 0.0) + time.perf_counter() - start


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


def _photo_image(name: str, source: ImageSource):
    """A photo page's image: a bundled photo, a file, or an item of the source by key."""
    if name in PHOTOS or Path(name).is_file():
        return load_image(name)
    return source.load(name)


@contextmanager
def _disk_errors(out: Path):
    """Turn a full disk or an unwritable folder into one clear error; what is done stays done."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            problem = "no space left on the device"
        elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            problem = "no permission to write"
        else:
            raise
        raise NeuronscopeError(
            f"{problem} while writing the gallery in {out} ({error.strerror}: {error.filename or ''}); "
            "everything finished before this is kept: free space (or fix the folder) and run the same command "
            "again to resume") from None
