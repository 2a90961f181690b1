"""Pictures of expanded weights: each window cell's weight vector feature-visualized and tiled
(``spatial_position_images``, from ``render_cells`` and ``tile_cells``), and the weights' one-sided
NMF read as RGB over the window (``weight_picture``)."""
from __future__ import annotations

import warnings

import torch

from ..factorization import nmf
from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, RenderWarning, render
from ..models.model import Model
from ..units import Unit
from .expanded import ExpandedWeights


def weight_picture(weights: ExpandedWeights, output: int = 0, seed: int = 0) -> torch.Tensor:
    """One-sided NMF of a unit's weights into 3 components, read as RGB over the window: (3, W, W).

    The window positions are rows and the input channels, split into positive and negative parts,
    are columns; smooth colour regions mean the unit learned spatial structure.
    """
    values = weights.weights[..., output]  # (W, W, C1)
    maps = torch.from_numpy(nmf(values, 3, negatives="split", seed=seed).loadings).float()  # (W, W, 3)
    return (maps / maps.max().clamp(min=1e-12)).permute(2, 0, 1)


def spatial_position_images(model: Model, weights: ExpandedWeights, output: int = 0,
                            config: RenderConfig | None = None) -> torch.Tensor:
    """For each window cell (dy, dx): a feature visualization of the weight vector ``E[dy, dx, :, j]``
    at the earlier layer (``direction_neuron`` at the centre), blended toward light grey by the
    cell's weight magnitude, tiled into one (3, W*S, W*S) image."""
    window = weights.weights.shape[0]
    vectors = weights.weights[..., output].reshape(window * window, -1)
    cells, _ = render_cells(model, vectors, weights.source, config or RenderConfig(steps=128, size=48))
    return tile_cells(cells, vectors.norm(dim=1).view(window, window))


def render_cells(model: Model, vectors: torch.Tensor, layer: str, config: RenderConfig, cosine_power: float = 0.0,
                 unit: Unit | None = None, seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Feature-visualize each (C1,) row of ``vectors`` as ``direction_neuron`` at the centre of
    ``layer`` (``config``: a RenderConfig), in one batch with ``unit``'s own neuron if given:
    (N, 3, S, S) and the unit's image (or None). ``seeds``: one per item (default: the config's
    seed + item index)."""
    items = [obj.direction_neuron(layer, v, cosine_power=cosine_power, batch=p) for p, v in enumerate(vectors)]
    if unit is not None:
        items.append(obj.neuron(unit.layer, unit.channel, batch=len(vectors)))
    with warnings.catch_warnings():  # cells whose vector is zero have no gradient; they fade to grey anyway
        warnings.simplefilter("ignore", RenderWarning)
        images = render(model, sum(items), config, batch=len(items), seeds=seeds).images
    return (images[: len(vectors)], images[len(vectors)]) if unit is not None else (images, None)


def tile_cells(cells: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """(h*w, 3, S, S) cell images and their (h, w) magnitudes as one (3, h*S, w*S) picture, each cell
    blended toward light grey by its magnitude over the largest: ``cell * m + 0.9 * (1 - m)``."""
    height, width = magnitudes.shape
    m = (magnitudes / magnitudes.max().clamp(min=1e-12)).reshape(-1, 1, 1, 1)
    blended = cells * m + 0.9 * (1 - m)
    side = cells.shape[-1]
    return blended.view(height, width, 3, side, side).permute(2, 0, 3, 1, 4).reshape(3, height * side, width * side)
