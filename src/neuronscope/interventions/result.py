"""What an intervention found: the class probabilities before and after, and the units of later
layers that changed most."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuronscopeError
from ..manifest import build_manifest, write_json


@dataclass(frozen=True)
class ClassChange:
    """A class's probability (and logit) before and after the edits."""

    index: int
    label: str
    before: float
    after: float
    logit_before: float
    logit_after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass(frozen=True)
class UnitChange:
    """A unit of a later layer: its mean over positions before and after the edits."""

    unit: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass
class Intervention:
    """The result of ``intervene``."""

    edits: list[str]
    """What was done, one line per layer edit."""
    labels: tuple[str, ...] | None
    logits_before: np.ndarray | None
    """(classes,) float64; None for a model without a class output."""
    logits_after: np.ndarray | None
    downstream: dict[str, tuple[np.ndarray, np.ndarray]]
    """Per recorded later layer, each channel's mean over positions (before, after)."""
    origin: dict = field(default_factory=dict, repr=False)

    @property
    def before(self) -> np.ndarray:
        """(classes,) class probabilities of the unedited image."""
        return _softmax(self._logits(self.logits_before))

    @property
    def after(self) -> np.ndarray:
        """(classes,) class probabilities with the edits."""
        return _softmax(self._logits(self.logits_after))

    def classes(self, top: int = 5) -> list[ClassChange]:
        """The ``top`` classes of the unedited image, then any class that entered the top ``top``
        with the edits (most probable first)."""
        before, after = self.before, self.after
        first = [int(k) for k in np.argsort(-before)[:top]]
        order = first + [int(k) for k in np.argsort(-after)[:top] if int(k) not in first]
        return [self._change(k, before, after) for k in order]

    def largest_changes(self, top: int = 5) -> list[ClassChange]:
        """The ``top`` classes whose probability changed most (either way)."""
        before, after = self.before, self.after
        return [self._change(int(k), before, after) for k in np.argsort(-np.abs(after - before))[:top]]

    def units(self, layer: str | None = None, top: int = 5) -> list[UnitChange]:
        """The ``top`` units of a recorded later layer (default: the first) whose mean changed most."""
        if not self.downstream:
            raise NeuronscopeError("no later layer was recorded (the edit is at the last layer; pass downstream=[...])")
        layer = layer or next(iter(self.downstream))
        if layer not in self.downstream:
            raise NeuronscopeError(f"layer '{layer}' was not recorded; recorded: {', '.join(self.downstream)}")
        before, after = self.downstream[layer]
        order = np.argsort(-np.abs(after - before))[:top]
        return [UnitChange(f"{layer}:{int(c)}", float(before[c]), float(after[c])) for c in order]

    def summary(self, top: int = 5) -> str:
        lines = [f"edits: {'; '.join(self.edits)}"]
        if self.logits_before is not None:
            lines += [f"{c.label:<28} {c.before:7.3f} -> {c.after:7.3f} ({c.change:+.3f})" for c in self.classes(top)]
        for layer in self.downstream:
            moved = ", ".join(f"{u.unit} {u.before:.2f}->{u.after:.2f}" for u in self.units(layer, 3))
            lines.append(f"most changed in {layer}: {moved}")
        return "\n".join(lines)

    def to_dict(self, top: int = 5) -> dict:
        def rows(changes: list[ClassChange]) -> list[dict]:
            return [{"class": c.index, "label": c.label, "before": round(c.before, 6), "after": round(c.after, 6),
                     "logit_before": round(c.logit_before, 4), "logit_after": round(c.logit_after, 4)} for c in changes]
        found = {"edits": self.edits}
        if self.logits_before is not None:
            found |= {"classes": rows(self.classes(top)), "largest_changes": rows(self.largest_changes(top))}
        found["downstream"] = {layer: [{"unit": u.unit, "before": round(u.before, 5), "after": round(u.after, 5)}
                                       for u in self.units(layer, top)] for layer in self.downstream}
        return found

    @property
    def manifest(self) -> dict:
        return build_manifest("intervention", **self.origin, **self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Write the manifest (edits, classes, units changed most) as JSON to ``path``."""
        return write_json(path, self.manifest)

    def _logits(self, logits: np.ndarray | None) -> np.ndarray:
        if logits is None:
            raise NeuronscopeError("the model has no class output: only downstream units were recorded")
        return logits

    def _change(self, k: int, before: np.ndarray, after: np.ndarray) -> ClassChange:
        label = self.labels[k] if self.labels else str(k)
        return ClassChange(k, label, float(before[k]), float(after[k]),
                           float(self.logits_before[k]), float(self.logits_after[k]))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()
