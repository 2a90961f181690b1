"""Weight factors: the input directions that a family of units shares, from their expanded weights."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from ..errors import NeuronscopeError
from ..factorization import nmf
from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, render
from ..images import SheetDisplay, contact_sheet, diverging, flat_cells, listing
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

    def __repr__(self) -> str:
        units = listing([str(u) for u in self.units], 6)
        return (f"WeightFactors({self.source} -> {self.target} [{units}], {len(self.factors)} factors, "
                f"error {self.error:.2f})")

    def sheet(self, model: Model | None = None, config=None) -> Image.Image:
        """One row per factor: each unit's signed map of it over the window (red: wants, blue: avoids;
        one scale), after the factor's feature visualization (a ``direction`` at the source, rendered
        with ``config``, default 256 steps at 96 px) when ``model`` is given."""
        k, n = len(self.factors), len(self.units)
        scale = float(self.maps.abs().max())
        rows = [[flat_cells(diverging(self.maps[u, :, :, m], scale), 96) for u in range(n)] for m in range(k)]
        names = [f"{self.target}:{u}" for u in self.units]
        title = f"{k} weight factors of {n} {self.target} units from {self.source} (error {self.error:.2f})"
        if model is None:
            pictures = [p for row in rows for p in row]
            captions = [f"factor {m}: {name}" for m in range(k) for name in names]
            return contact_sheet(pictures, captions, columns=n, cell=96, title=title)
        config = config or RenderConfig(steps=256, size=96, progress=False)
        icons = render(model, sum(obj.direction(self.source, f, batch=m) for m, f in enumerate(self.factors)),
                       config, batch=k).images
        pictures = [p for m in range(k) for p in (icons[m], *rows[m])]
        captions = [c for m in range(k) for c in (f"factor {m}", *names)]
        return contact_sheet(pictures, captions, columns=n + 1, cell=96, title=f"{model.name}: {title}")


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
    return WeightFactors(weights.source, weights.target, [weights.targets[o] for o in chosen],
                         torch.from_numpy(found.components).float(), loadings[: len(chosen)] - loadings[len(chosen) :],
                         found.error)
