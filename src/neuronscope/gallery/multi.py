"""One gallery folder for several models: each built as alone, then every pair matched and every
model's pages written again with the links between them (``compare_views``)."""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path

from ..data.resolve import resolve_source
from ..errors import NeuronscopeError
from ..models import load
from ..models.model import Model
from .build import BuildSummary, build_gallery
from .compare_views import compare_pair, read_manifest
from .config import GalleryConfig
from .engine import Engine
from .pages import Pages


def build_galleries(out: str | Path, config: GalleryConfig | None = None, models: list[str | Model] | None = None,
                    engine: Engine | None = None) -> list[BuildSummary]:
    """Build (or resume) the gallery of each model into ``out`` with the same settings, then match
    every pair of them and write every model's pages again with the links between them."""
    out, config = Path(out), config or GalleryConfig()
    loaded = [m if isinstance(m, Model) else load(m) for m in (models or [config.model])]
    names = [m.name for m in loaded]
    if len(set(names)) < len(names):
        raise NeuronscopeError(f"each model once, please: got {', '.join(names)}")
    summaries = [build_gallery(out, replace(config, model=m.name), model=m, engine=engine) for m in loaded]
    if len(loaded) > 1:
        source = resolve_source(config.source)
        pages = Pages(out)
        for a, b in combinations(loaded, 2):
            pages.write_comparison(compare_pair(out, a, b, source, config.progress))
        for model in loaded:
            pages.write_all(read_manifest(out, model.name), source.name)
    return summaries
