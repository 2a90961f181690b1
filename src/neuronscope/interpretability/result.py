"""What scoring gives: a verdict per unit, per-layer means, JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..manifest import write_json


@dataclass(frozen=True)
class UnitScore:
    """One unit's verdict.

    ``score``: the two-choice score with natural exemplars (the MIS form, uncalibrated; 0.5 is
    chance, 1 is every task answered right by a wide margin), ``right`` the fraction of its tasks
    answered right, ``margin`` their mean delta; ``visual_*`` the same with the unit's feature
    visualizations as the strong references (None when it has none). Both None for a ``constant`` unit (dead: its
    strongest and weakest images peak at the same value), which is flagged instead of scored.
    ``one_group``: with ``ScoreConfig.other_groups``, its strongest or weakest images all come
    from one group of the source (one photo), so no task could be posed; not scored either.
    ``strongest``: (key, (top, left, bottom, right)) of its strongest images, for sheets and pages.
    """

    unit: str
    layer: str
    channel: int
    score: float | None
    right: float | None
    margin: float | None
    visual_score: float | None = None
    visual_right: float | None = None
    visual_margin: float | None = None
    constant: bool = False
    peak_range: float = 0.0
    one_group: bool = False
    strongest: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """A word for pages: constant, or how the score compares with chance."""
        if self.constant:
            return "constant (dead): not scored"
        if self.one_group:
            return "one photo: its strongest or weakest images all come from one source group, not scored"
        if self.score is None:
            return "not scored"
        return "clear" if self.score >= 0.8 else "mixed" if self.score >= 0.65 else "unclear"


@dataclass
class InterpretabilityScores:
    """The verdicts of some units of one model, judged by ``similarity``'s features."""

    model: str
    similarity: str
    units: list[UnitScore]
    manifest: dict = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    """Seconds: ``examples`` (the pass), ``similarity`` (embedding), ``total``."""

    def __getitem__(self, unit: str) -> UnitScore:
        for found in self.units:
            if found.unit == unit:
                return found
        raise KeyError(unit)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(u.layer for u in self.units))

    def scored(self, layer: str | None = None) -> list[UnitScore]:
        """The units that got a score (not constant), of one layer or all."""
        return [u for u in self.units if u.score is not None and (layer is None or u.layer == layer)]

    def mean(self, layer: str | None = None, visual: bool = False) -> float | None:
        """The mean score of a layer's scored units (None when none has one)."""
        values = [u.visual_score if visual else u.score for u in self.scored(layer)]
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def ranked(self, layer: str | None = None) -> list[UnitScore]:
        """Scored units, best first (ties: higher margin first)."""
        return sorted(self.scored(layer), key=lambda u: (-u.score, -(u.margin or 0.0)))

    def summary(self) -> dict[str, dict]:
        """Per layer: units, scored, constant, mean score, mean visualization score."""
        return {layer: {"units": sum(u.layer == layer for u in self.units), "scored": len(self.scored(layer)),
                        "constant": sum(u.constant for u in self.units if u.layer == layer),
                        "mean_score": self.mean(layer), "mean_visual_score": self.mean(layer, visual=True)}
                for layer in self.layers}

    def to_dict(self) -> dict:
        return {**self.manifest, "similarity": self.similarity, "summary": self.summary(), "timing": self.timing,
                "scores": [asdict(u) for u in self.units]}

    def save(self, path: str | Path) -> Path:
        """Write the scores as JSON (atomically): the manifest, ``summary`` per layer, ``scores`` per unit."""
        return write_json(Path(path), self.to_dict())
