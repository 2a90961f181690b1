"""Neuron groups: a layer's activations on one image as a handful of (where, what) parts.

NMF factors the (positions x channels) activation matrix X into k groups, X ~ S C^T: each group
has a spatial map S_g (where it is active) and a channel direction C_g (what it is). Groups are
ordered left to right by the position of their peak. EfficientNet's block outputs are signed, so
negatives are clipped by default (``negatives="split"`` keeps them as extra channels; see
``factorization.nmf``). The maps sum, over groups, to NMF's reconstruction of the activation
magnitude at each position (``reconstruction`` = S C^T ~ max(X, 0)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..capture import Copies, capture
from ..errors import NeuronscopeError
from ..factorization import nmf
from ..featurevis import objectives
from ..featurevis.render import RenderConfig, Result, render
from ..images import (
    SheetDisplay,
    contact_sheet,
    factor_colors,
    factor_overlay,
    heat_overlay,
    listing,
    save_sheet,
)
from ..manifest import build_manifest, image_name
from ..models.model import Model
from ..predict import Prediction, classify
from ..readout import layer_activations
from .hidden import attribute


@dataclass
class NeuronGroups(SheetDisplay):
    """k groups of one image's activations at one layer."""

    layer: str
    maps: np.ndarray
    """(k, H, W) spatial factors S_g."""
    directions: np.ndarray
    """(k, C) channel factors C_g."""
    error: float
    """Relative Frobenius reconstruction error of the clipped activations."""
    image: torch.Tensor
    """(3, H_img, W_img) the prepared input."""
    manifest: dict = field(default_factory=dict, repr=False)
    """Model, image, layer, k, seed, negatives and error (set by ``neuron_groups``)."""

    @property
    def k(self) -> int:
        return len(self.maps)

    @property
    def reconstruction(self) -> np.ndarray:
        """(C, H, W) sum over groups of S_g C_g^T."""
        return np.einsum("khw,kc->chw", self.maps, self.directions)

    def attribution(self, gradients: torch.Tensor) -> np.ndarray:
        """(targets, k): each group's attribution ``sum S_g C_g * grad`` for gradients (targets, C, H, W)
        at this layer (from ``attribution.attribute``). They sum to the reconstruction's attribution."""
        grads = gradients.detach().cpu().numpy()
        return np.einsum("khw,kc,tchw->tk", self.maps, self.directions, grads)

    def colors(self) -> list[tuple[float, float, float]]:
        """One RGB colour per group, evenly spaced hues."""
        return factor_colors(self.k)

    def overlay(self) -> torch.Tensor:
        """(3, H_img, W_img): the image tinted by the dominant group; brightness = strength."""
        return factor_overlay(self.image, torch.from_numpy(self.maps).float(), self.colors())

    def __repr__(self) -> str:
        height, width = self.maps.shape[1:]
        return f"NeuronGroups({self.layer}, {self.k} groups over {height}x{width} positions, error {self.error:.2f})"

    def explain(self, model: Model, config: RenderConfig | None = None) -> ExplainedGroups:
        """Each group's direction feature-visualized (``config``: default 128 steps at 96 px; all in
        one batch) and its attribution to the model's top class on the image."""
        config = config or RenderConfig(steps=128, size=96)
        objective = sum(objectives.direction(self.layer, torch.from_numpy(d).float(), batch=g)
                        for g, d in enumerate(self.directions))
        icons = render(model, objective, config, batch=self.k)
        top = classify(model, [self.image[None]], top=1)[0][0]  # the prepared batch, used as it is
        shares = self.attribution(attribute(model, [top.index], self.image[None], self.layer).gradients)[0]
        manifest = build_manifest(
            "neuron groups", model=model, image=self.manifest.get("image"), layer=self.layer, k=self.k,
            seed=self.manifest.get("seed"), negatives=self.manifest.get("negatives"), reconstruction_error=self.error,
            top_class=top.label, attribution_to_top_class=shares.tolist(), icons=icons.manifest)
        return ExplainedGroups(self, model.name, top, shares, icons, manifest)

    def sheet(self) -> Image.Image:
        """The input, the groups' overlay and each group's map (``explain`` adds their attribution to
        the top class and their directions rendered)."""
        maps = self._maps()
        return contact_sheet([self.image, self.overlay(), *maps], ["input", f"{self.k} groups",
                             *[f"group {g}" for g in range(self.k)]], columns=self.k + 2, title=self._title())

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)

    def _maps(self) -> list[torch.Tensor]:
        return [heat_overlay(self.image, torch.from_numpy(m), c) for m, c in zip(self.maps, self.colors())]

    def _title(self, model: str | None = None) -> str:
        prefix = f"{model} " if model else ""
        return f"{prefix}{self.layer}: {self.k} neuron groups (error {self.error:.2f})"


@dataclass
class ExplainedGroups(SheetDisplay):
    """Neuron groups with what ``NeuronGroups.explain`` computed for them."""

    groups: NeuronGroups
    model: str
    """The model's name."""
    top: Prediction
    """The model's top class on the image."""
    shares: np.ndarray
    """(k,) each group's attribution to the top class."""
    icons: Result
    """One feature visualization of each group's direction."""
    manifest: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        shares = listing([f"{v:+.2f}" for v in self.shares], limit=6)
        return f"ExplainedGroups({self.groups.layer}, {self.groups.k} groups; attribution to {self.top.label}: {shares})"

    def sheet(self) -> Image.Image:
        """Top row: input, overlay, each group's map captioned with its attribution to the top class;
        bottom row (under the maps): each group's direction rendered."""
        g, k = self.groups, self.groups.k
        blank = torch.ones_like(g.image)
        pictures = [g.image, g.overlay(), *g._maps(), blank, blank, *self.icons.images]
        captions = ["input", f"{k} groups", *[f"group {i}: {v:+.2f} {self.top.label}" for i, v in enumerate(self.shares)],
                    "", "", *[f"group {i} direction" for i in range(k)]]
        return contact_sheet(pictures, captions, columns=k + 2, title=g._title(self.model))

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)


def neuron_groups(model: Model, image: str | np.ndarray | torch.Tensor, layer: str, k: int = 6, *,
                  seed: int = 0, negatives: str = "clip", size: int | tuple[int, int] | None = None) -> NeuronGroups:
    """Factor ``layer``'s activations on ``image`` into ``k`` neuron groups (NMF, fixed seed)."""
    info = model.spatial_layer(layer)
    if not 1 <= k <= info.channels:
        raise NeuronscopeError(f"k must be in 1..{info.channels} for layer '{layer}' ({info.channels} channels), got {k}")
    x, acts = layer_activations(model, image, info.name, size)  # acts: (C, H, W)
    if k > acts.shape[1] * acts.shape[2]:
        raise NeuronscopeError(f"k must be at most the {acts.shape[1]}x{acts.shape[2]} positions of layer '{layer}', got {k}")
    positions = acts.permute(1, 2, 0)  # (H, W, C)
    found = nmf(positions, k, negatives=negatives, seed=seed)
    maps = found.loadings  # (H, W, k)
    order = np.argsort([np.unravel_index(np.argmax(maps[..., g]), maps.shape[:2])[1] for g in range(k)], kind="stable")
    return NeuronGroups(info.name, np.moveaxis(maps, -1, 0)[order], found.directions[order], found.error,
                        x[0].detach().cpu(), build_manifest(
                            "neuron groups", model=model, image=image_name(image), layer=info.name, k=k, seed=seed,
                            negatives=negatives, reconstruction_error=found.error))


def group_links(model: Model, earlier: NeuronGroups, later: NeuronGroups) -> np.ndarray:
    """(k_later, k_earlier): how much each group of the earlier layer contributes to each group of
    the later one on their image (Building Blocks' group-to-group attribution). A later group's
    score is its part of the later layer, ``sum_p S_g(p) <C_g, a(p)>``; its gradient at the earlier
    layer is split over the earlier groups as ``sum S C * grad`` (see ``attribution``)."""
    if model.depth(earlier.layer) >= model.depth(later.layer):
        raise NeuronscopeError(f"'{earlier.layer}' does not run before '{later.layer}': give the earlier groups first")
    if not torch.equal(earlier.image, later.image):
        raise NeuronscopeError("the two sets of groups were made on different images")
    copies = Copies(later.k)
    maps = torch.from_numpy(later.maps).float()
    directions = torch.from_numpy(later.directions).float()
    with capture(model, [earlier.layer, later.layer], replace={earlier.layer: copies}) as cap:
        found = cap(earlier.image[None].to(model.device, model.dtype))[later.layer]
        parts = torch.einsum("gchw,gc->ghw", found, directions.to(found))
        scores = (parts * maps.to(found)).flatten(1).sum(1)
        (gradients,) = torch.autograd.grad(scores.sum(), copies.tensor)
    return earlier.attribution(gradients)
