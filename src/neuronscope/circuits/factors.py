"""Weight factors: the input directions that a family of units shares, from their expanded weights."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..errors import NeuronscopeError
from ..factorization import nmf
from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, Result, render
from ..images import SheetDisplay, contact_sheet, diverging, flat_cells, listing, save_sheet
from ..manifest import build_manifest, derived_manifest
from ..models.model import Model
from .expanded import ExpandedWeights


@dataclass
class WeightFactors(SheetDisplay):
    """Input factors shared by a family of units: ``E[dy, dx, :, unit] ~ sum_m maps[unit, dy, dx, m] * factors[m]``."""

    source: str
    target: str
    units: list[int]
    """The target channels factored, in the order of ``maps``."""
    factors: torch.Tensor
    """(k, C1) non-negative directions over the source channels (render them with ``direction``)."""
    maps: torch.Tensor
    """(units, W, W, k) each unit's signed loading on each factor over the window."""
    error: float
    """Relative Frobenius error of the NMF on the stacked positive and negative parts."""
    manifest: dict = field(default_factory=dict, repr=False)
    """The weights' model, the layers, units, k, seed and error (set by ``weight_factors``)."""

    def __repr__(self) -> str:
        units = listing([str(u) for u in self.units], 6)
        return (f"WeightFactors({self.source} -> {self.target} [{units}], {len(self.factors)} factors, "
                f"error {self.error:.2f})")

    def sheet(self) -> Image.Image:
        """One row per factor: each unit's signed map of it over the window (red: wants, blue: avoids;
        one scale). ``explain`` adds each factor's feature visualization."""
        k, names = len(self.factors), self._names()
        pictures = [p for row in self._rows() for p in row]
        captions = [f"factor {m}: {name}" for m in range(k) for name in names]
        return contact_sheet(pictures, captions, columns=len(self.units), cell=96, title=self._title())

    def explain(self, model: Model, config: RenderConfig | None = None) -> ExplainedFactors:
        """Each factor feature-visualized (a ``direction`` at the source, rendered with ``config``,
        default 256 steps at 96 px), all in one batch."""
        config = config or RenderConfig(steps=256, size=96, progress=False)
        icons = render(model, sum(obj.direction(self.source, f, batch=m) for m, f in enumerate(self.factors)),
                       config, batch=len(self.factors))
        manifest = build_manifest("weight factors", model=model, **self._fields(), seed=self.manifest.get("seed"),
                                  render=config)
        return ExplainedFactors(self, model.name, icons, manifest)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)

    def _rows(self) -> list[list[torch.Tensor]]:
        scale = float(self.maps.abs().max())
        return [[flat_cells(diverging(self.maps[u, :, :, m], scale), 96) for u in range(len(self.units))]
                for m in range(len(self.factors))]

    def _names(self) -> list[str]:
        return [f"{self.target}:{u}" for u in self.units]

    def _title(self) -> str:
        return (f"{len(self.factors)} weight factors of {len(self.units)} {self.target} units from {self.source} "
                f"(error {self.error:.2f})")

    def _fields(self) -> dict:
        return {"source": self.source, "target": self.target, "units": self.units, "k": len(self.factors),
                "error": self.error}


@dataclass
class ExplainedFactors(SheetDisplay):
    """Weight factors with each factor's feature visualization (``WeightFactors.explain``)."""

    factors: WeightFactors
    model: str
    """The model's name."""
    icons: Result
    """One feature visualization per factor."""
    manifest: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        f = self.factors
        return f"ExplainedFactors({f.source} -> {f.target}, {len(f.factors)} factors rendered)"

    def sheet(self) -> Image.Image:
        """One row per factor: its feature visualization, then each unit's signed map of it."""
        f, names, rows = self.factors, self.factors._names(), self.factors._rows()
        k = len(f.factors)
        pictures = [p for m in range(k) for p in (self.icons.images[m], *rows[m])]
        captions = [c for m in range(k) for c in (f"factor {m}", *names)]
        return contact_sheet(pictures, captions, columns=len(f.units) + 1, cell=96, title=f"{self.model}: {f._title()}")

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)


def weight_factors(weights: ExpandedWeights, k: int = 2, outputs: list[int] | None = None, seed: int = 0) -> WeightFactors:
    """One-sided NMF over the expanded weights of several units at once (``outputs``: indices into
    ``weights.targets``, default all): the units' positive and negative parts are stacked along the
    unit axis, so the k factors are non-negative directions over the input channels and each unit's
    signed map (positive part's loading minus negative part's) says where it wants or avoids each."""
    chosen = list(range(len(weights.targets))) if outputs is None else list(outputs)
    bad = [o for o in chosen if not 0 <= o < len(weights.targets)]
    if bad or not chosen:
        raise NeuronscopeError(f"outputs {bad or chosen} are out of range: the weights have outputs 0..{len(weights.targets) - 1}")
    rows = weights.weights[..., chosen].permute(3, 0, 1, 2)  # (n, W, W, C1)
    stacked = torch.cat([rows.clamp(min=0), (-rows).clamp(min=0)])
    found = nmf(stacked, k, negatives="clip", seed=seed)
    loadings = torch.from_numpy(found.loadings).float()  # (2n, W, W, k)
    factors = WeightFactors(weights.source, weights.target, [weights.targets[o] for o in chosen],
                            torch.from_numpy(found.components).float(), loadings[: len(chosen)] - loadings[len(chosen) :],
                            found.error)
    factors.manifest = derived_manifest("weight factors", weights.manifest, **factors._fields(), seed=seed)
    return factors
