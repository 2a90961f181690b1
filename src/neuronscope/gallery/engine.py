"""Who does a build's heavy work (the pass over the image source, the renders): this process
(``LocalEngine``, the default) or a cluster (``neuronscope.scale.RayEngine``). An engine computes; the build's driver alone writes pages,
files and the manifest, so resuming and atomic writes work the same whichever engine ran."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ..models.model import Model
from ..stream import Runner
from .config import GalleryConfig
from .unit_views import RenderedChunk, render_pictures

Job = tuple[str, list[int]]
"""A chunk of work: a layer and consecutive channels of it, rendered together."""


class Engine(Protocol):
    """What ``build_gallery`` needs from an engine."""

    name: str

    def pass_runner(self) -> Runner | None:
        """How the build's one pass over its image source runs (None: in this process,
        ``stream.local_batches``)."""

    def render(self, model: Model, jobs: Sequence[Job], config: GalleryConfig) -> Iterator[RenderedChunk]:
        """Every job's ``render_pictures``, each yielded as soon as it is done (in any order)."""


class LocalEngine:
    """Everything in this process, one chunk after another, in order."""

    name = "local"

    def pass_runner(self) -> Runner | None:
        return None

    def render(self, model: Model, jobs: Sequence[Job], config: GalleryConfig) -> Iterator[RenderedChunk]:
        for layer, channels in jobs:
            yield render_pictures(model, layer, channels, config)
