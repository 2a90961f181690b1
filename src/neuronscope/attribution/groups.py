"""Neuron groups: a layer's activations on one image as a handful of (where, what) parts.

NMF factors the (positions x channels) activation matrix X into k groups, X ~ S C^T: each group
has a spatial map S_g (where it is active) and a channel direction C_g (what it is). Groups are
ordered left to right by the position of their peak. EfficientNet's block outputs are signed, so
negatives are clipped by default (``negatives="split"`` keeps them as extra channels; see
``factor.ChannelReducer``). The maps sum, over groups, to NMF's reconstruction of the activation
magnitude at each position (``reconstruction`` = S C^T ~ max(X, 0)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NeuronscopeError
from ..images import factor_colors, factor_overlay
from ..models.model import Model
from ..readout import layer_activations
from .factor import ChannelReducer


@dataclass
class NeuronGroups:
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
    reducer = ChannelReducer(k, "NMF", negatives=negatives, seed=seed)
    maps = reducer.fit_transform(positions)  # (H, W, k)
    directions = reducer.components
    if negatives == "split":  # fold the negative part back onto its channel, with its sign
        directions = directions[:, : info.channels] - directions[:, info.channels :]
    order = np.argsort([np.unravel_index(np.argmax(maps[..., g]), maps.shape[:2])[1] for g in range(k)], kind="stable")
    return NeuronGroups(info.name, np.moveaxis(maps, -1, 0)[order], directions[order],
                        reducer.reconstruction_error(positions), x[0].detach().cpu())
