"""``score_overview``: what the ``score`` command does. Score a layer's units (and, as the
baseline, as many random directions of it), optionally with one rendered visualization each,
and draw the best and worst units with their strongest images."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples.topk import crop_box, example_image
from ..featurevis.render import RenderConfig, render_units
from ..images import contact_sheet, save_sheet
from ..models.model import Model
from .baseline import SUFFIX, with_random_directions
from .config import ScoreConfig
from .result import InterpretabilityScores, UnitScore
from .score import channels_by_layer, interpretability

SHEET_UNITS = 5
"""Units in each half of the sheet (the best, the worst)."""
SHEET_IMAGES = 5
"""Strongest images shown per unit."""


@dataclass
class ScoreOverview:
    """Scores of some units, the baseline's, and what the sheet shows."""

    model: Model
    source: ImageSource
    scores: InterpretabilityScores

    def report(self) -> dict:
        """Per layer: units, scored, constant, mean score (and mean visual score)."""
        return self.scores.summary()

    def sheet(self, units: int = SHEET_UNITS) -> Image.Image:
        """The ``units`` best and worst scored units of the first layer, each with its strongest images."""
        ranked = self.scores.ranked(self.scores.layers[0])
        if not ranked:
            raise NeuronscopeError("no unit got a score (all constant): there is nothing to draw")
        chosen = ranked[:units] + [u for u in ranked[-units:] if u not in ranked[:units]]
        images, captions = [], []
        for rank, unit in enumerate(chosen):
            for i, (key, box) in enumerate(unit.strongest[:SHEET_IMAGES]):
                images.append(crop_box(example_image(self.model, self.source, key), tuple(box), 96))
                captions.append(_caption(unit, "best" if rank < units else "worst") if i == 0 else key)
        return contact_sheet(images, captions, columns=SHEET_IMAGES,
                             title=f"{self.model.name}: best and worst units by two-choice score (judged by "
                                   f"{self.scores.similarity}; 0.5 = chance, uncalibrated)")

    def save(self, folder: str | Path) -> Path:
        """``scores.json`` and ``best-and-worst.png`` (+ .json) in ``folder``; returns the sheet's path."""
        folder = Path(folder)
        self.scores.save(folder / "scores.json")
        return save_sheet(folder / "best-and-worst.png", self.sheet(), self.scores.manifest)


def score_overview(model: Model, source: ImageSource, units: str | Sequence[str], config: ScoreConfig = ScoreConfig(), *,
                   baseline: bool = True, render: RenderConfig | None = None,
                   cache_dir: str | Path | None = None) -> ScoreOverview:
    """Score ``units`` (a layer, or addresses of one layer) and, with ``baseline``, as many random
    directions of that layer; with ``render``, render each once for its visualization-based score."""
    addresses = [units] if isinstance(units, str) else list(units)
    layers = list(channels_by_layer(model, addresses))
    if baseline:
        for layer in layers:
            model = with_random_directions(model, layer)
        addresses += [f"{layer}.{SUFFIX}" for layer in layers]
    visualizations = _rendered(model, addresses, render) if render is not None else None
    scores = interpretability(model, source, addresses, config, visualizations=visualizations,
                              cache_dir=Path(cache_dir) if cache_dir is not None else None)
    return ScoreOverview(model, source, scores)


def _rendered(model: Model, addresses: list[str], render: RenderConfig) -> dict[str, torch.Tensor]:
    units = [f"{layer}:{c}" for layer, channels in channels_by_layer(model, addresses).items() for c in channels]
    result = render_units(model, units, render)
    return {unit: result.images[i : i + 1] for i, unit in enumerate(units)}


def _caption(unit: UnitScore, which: str) -> str:
    return f"{which}: {unit.unit} {unit.score:.2f}"
