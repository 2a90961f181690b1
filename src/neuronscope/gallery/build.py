"""``build_gallery`` and ``build_galleries``: plan each model's gallery, make ONE pass over the
image source for everything every model and every pair of models needs from it (dataset
examples, atlas samples, unit matches), then each model's remaining steps, then the pages.

    build_gallery("efficientnet_lite0", GalleryConfig(), "gallery")
    build_galleries(["efficientnet_lite0", "efficientnet_lite1"], GalleryConfig(atlas=True), "gallery")

Resumable: every finished piece is recorded in each model's manifest (``state``) after its files
are on disk, cached examples and stored matches are reused, and the pass itself checkpoints, so a
killed build loses at most the piece in progress.
"""
from __future__ import annotations

import errno
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from itertools import combinations
from pathlib import Path

from ..data.resolve import resolve_source
from ..errors import NeuronscopeError
from ..examples.inputs import ExampleImages
from ..manifest import stable_hash
from ..models import load
from ..models.model import Model
from ..stream import PassConfig, stream
from .compare_views import PairMatches
from .config import GalleryConfig
from .engine import Engine, LocalEngine
from .feature_views import with_gallery_features
from .model_build import BuildSummary, ModelBuild, timed
from .pages import Pages
from .plan import network

PASS_FOLDER = "_cache"
"""Where a build's pass keeps its checkpoint, beside the models' folders."""


def build_gallery(model: Model | str, config: GalleryConfig | None = None, out: str | Path = "gallery",
                  engine: Engine | None = None) -> BuildSummary:
    """Build (or extend, or resume) the gallery of ``model`` (a Model, or a name or spec for
    ``load``) with ``config`` (default ``GalleryConfig()``) in ``out``. ``engine`` does the pass
    and the rendering (default ``LocalEngine()``: this process; ``neuronscope.scale.RayEngine``
    for a cluster); pages and manifests are written here either way."""
    return build_galleries([model], config, out, engine)[0]


def build_galleries(models: Sequence[Model | str], config: GalleryConfig | None = None, out: str | Path = "gallery",
                    engine: Engine | None = None) -> list[BuildSummary]:
    """Build (or resume) the gallery of each model into ``out`` with the same settings; with
    several models, also match every pair of them and link their pages (comparison pages,
    similar units, caricatures at matched depth). One pass over the image source serves all."""
    out, config, engine = Path(out), config or GalleryConfig(), engine or LocalEngine()
    if out.exists() and not out.is_dir():
        raise NeuronscopeError(f"--out '{out}' is a file, not a folder")
    loaded = [m if isinstance(m, Model) else load(m) for m in models]
    if not loaded:
        raise NeuronscopeError("build_galleries needs at least one model")
    names = [m.name for m in loaded]
    if len(set(names)) < len(names):
        raise NeuronscopeError(f"each model once, please: got {', '.join(names)}")
    source = resolve_source(config.source)
    if config.features is not None:
        loaded = [with_gallery_features(m, config, source, out / m.name / "_cache" / "dictionaries") for m in loaded]
    with _disk_errors(out), ExitStack() as stack:
        builds = [stack.enter_context(ModelBuild(model, config, source, out)) for model in loaded]
        pairs = [PairMatches(a.model, b.model, network(a.model, a.gallery_layers), network(b.model, b.gallery_layers),
                             source, out)
                 for a, b in combinations(builds, 2)]
        start = time.perf_counter()
        result = _one_pass(builds, pairs, source, config, engine, out)
        for build in builds:
            build.take(result)
        if result is not None:
            result.forget_checkpoint()  # the examples are cached; matches and atlases are cheap to redo
        for build in builds:
            build.summary.timing["pass_s"] = time.perf_counter() - start
        images = ExampleImages(source)
        wanted, raw = {}, set()
        for build in builds:
            theirs, photos = build.wanted()
            for preparer, keys in theirs.items():
                wanted.setdefault(preparer, set()).update(keys)
            raw |= photos
        images.prefetch(wanted, raw)
        for build in builds:
            build.run(images, engine)
        pages = Pages(out)
        for pair in pairs:
            pages.write_comparison(pair.finish(result))
        for build in builds:
            with timed(build.summary, "pages_s"):
                build.summary.pages = pages.write_all(build.state.data, source.name)
            build.state.finish({"rendered": build.summary.rendered, "photos": build.summary.photos,
                                "timing": build.summary.timing})
    return [build.summary for build in builds]


def _one_pass(builds: list[ModelBuild], pairs: list[PairMatches], source, config: GalleryConfig, engine: Engine,
              out: Path):
    """The build's one pass over ``source`` for every accumulator that still has work (None when
    everything is cached or stored)."""
    accumulators = [a for build in builds for a in build.accumulators()]
    accumulators += [pair.accumulator() for pair in pairs if pair.accumulator() is not None]
    if not accumulators:
        return None
    checkpoint = out / PASS_FOLDER / f"pass-{stable_hash(sorted(b.model.name for b in builds))}.npz"
    result = stream(source, accumulators, PassConfig(progress=config.progress), checkpoint=checkpoint,
                    runner=engine.pass_runner(), what="gallery pass")
    return result


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
