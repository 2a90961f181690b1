"""Neuron mechanics: how one unit is built from an earlier layer, shown as pictures.

    d = decompose(model, "blocks.4.0:17")                  # the unit's input pattern at blocks.3.2
    c = contributions(model, "chelsea", "blocks.3.2", "blocks.4.0:17")  # what made it fire on a photo
    f = firing_cases(model, "blocks.4.0:17", "blocks.3.2")  # the distinct ways it fires on natural crops
    decomposition_sheet(d, c)

``decompose`` takes the unit's input pattern over a window of the earlier layer, either its expanded
weights (Method A, the default) or the pattern found by optimizing that layer directly (Method B),
and feature-visualizes each window cell (Olah et al., Circuits; Lucid issue #110). ``contributions``
does the same for the attribution vectors ``a1 * d a2 / d a1`` of one image, ``firing_cases`` factors
such contribution vectors over many natural images.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..capture import capture
from ..errors import NeuronscopeError, did_you_mean
from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, RenderWarning, render
from ..models.model import Model
from ..overrides import linear_forward
from ..readout import layer_activations
from ..units import Unit
from .weights import (
    expanded_weights,
    optimal_input_pattern,
    render_cells,
    spatial_channel,
    tile_cells,
)

METHODS = ("weights", "optimize")
CASE_METHODS = ("nmf", "kmeans")


@dataclass(frozen=True)
class MechanicsConfig:
    """How to decompose a unit."""

    method: str = "weights"
    """``weights`` (Method A: expanded weights, deterministic) or ``optimize`` (Method B)."""
    window: int | None = None
    """Window side in the earlier layer; None: the smallest odd window from 5 that holds every weight."""
    render: RenderConfig = field(default_factory=lambda: RenderConfig(steps=128, size=48, progress=False))
    """How each window cell (and the unit itself) is feature-visualized."""
    cosine_power: float = 0.0
    """p of the ``direction_neuron`` objective of each cell (0: plain dot product)."""
    optimize_steps: int = 200
    """Projected gradient steps of Method B."""
    nonnegative: bool | None = None
    """Method B's constraint ``H >= 0``; None: on when the earlier layer is never negative on photos."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise NeuronscopeError(f"unknown method '{self.method}': {did_you_mean(self.method, METHODS)} "
                                   f"(choose {' or '.join(METHODS)})")
        if self.optimize_steps < 1:
            raise NeuronscopeError(f"optimize_steps must be positive, got {self.optimize_steps}")


@dataclass(frozen=True)
class Decomposition:
    """A unit's input pattern ``vectors[dy, dx, :]`` over a window of ``source``, with one feature
    visualization per window cell and one of the unit itself."""

    unit: str
    source: str
    method: str
    vectors: torch.Tensor
    """(W, W, C1); for ``weights`` the expanded weights, for ``optimize`` the pattern (norm: a typical
    natural W x W patch of the source layer)."""
    cells: torch.Tensor
    """(W*W, 3, S, S) each cell's visualization, row-major, not yet faded by magnitude."""
    target: torch.Tensor
    """(3, S, S) the unit's own feature visualization (neuron objective at the centre)."""

    @property
    def magnitudes(self) -> torch.Tensor:
        """(W, W) the norm of each cell's vector: how much that position matters."""
        return self.vectors.norm(dim=-1)

    def grid(self) -> torch.Tensor:
        """(3, W*S, W*S) the cells tiled, faded toward grey where the magnitude is small."""
        return tile_cells(self.cells, self.magnitudes)


def decompose(model: Model, unit: str, from_layer: str | None = None, config: MechanicsConfig | None = None) -> Decomposition:
    """Decomposed feature visualization of ``unit`` (a channel; its neuron at the layer's centre).

    ``from_layer`` defaults to ``previous_layer``: the deepest curated layer that runs before the unit
    (for ``blocks.4.0`` that is ``blocks.3.2``; for a part of a block, the block before it).
    """
    config = config or MechanicsConfig()
    target = spatial_channel(model, unit)
    source = model.spatial_layer(from_layer).name if from_layer is not None else previous_layer(model, target.layer)
    weights = expanded_weights(model, source, str(target), window=config.window).weights[..., 0]  # (W, W, C1)
    if config.method == "weights":
        vectors = weights
    else:
        window = weights.shape[0]
        nonnegative = config.nonnegative if config.nonnegative is not None else _never_negative(model, source)
        pattern = optimal_input_pattern(model, source, str(target), window, steps=config.optimize_steps,
                                        nonnegative=nonnegative, seed=config.render.seed,
                                        radius=typical_patch_norm(model, source, window))
        vectors = pattern.permute(1, 2, 0).contiguous()
    cells, own = render_cells(model, source, vectors.reshape(-1, vectors.shape[-1]), config.render,
                             config.cosine_power, target)
    return Decomposition(str(target), source, config.method, vectors, cells, own)


def previous_layer(model: Model, layer: str) -> str:
    """The deepest curated spatial layer that runs before ``layer``: the default ``from`` layer."""
    depth = model.depth(layer)
    earlier = [info.name for info in model.layers if info.spatial is not None and model.depth(info.name) < depth]
    if not earlier:
        raise NeuronscopeError(f"no curated layer runs before '{layer}'; give the earlier layer explicitly")
    return earlier[-1]


# --- one image: contributions -------------------------------------------------------------------


@dataclass(frozen=True)
class Contributions:
    """How the features of ``source`` made ``unit`` fire on one image, on the linearized network.

    The linearized network is the real one with every ReLU / ReLU6 between the two layers replaced by
    the identity and every max-pool by an average pool (forward and backward), fed the real ``source``
    activations ``a1`` of the image. It is affine in ``a1``, so ``linearized = bias + values.sum()``
    exactly (up to float rounding): ``bias`` is its value at ``a1 = 0`` (BatchNorm shifts, conv biases,
    residual branches that bypass ``source``), ``values = a1 * d unit / d a1``. Other nonlinearities on
    the path (SiLU, sigmoid gates) make it a first-order approximation; ``gap`` then says how far.
    ``actual`` is the unit's value on the real network, for comparison.
    """

    unit: str
    """The neuron explained, with its position (``layer:c@x,y``)."""
    source: str
    image: torch.Tensor
    """(3, H, W) the image as the model saw it."""
    values: torch.Tensor
    """(C1, H1, W1) contribution of every source channel at every source position."""
    bias: float
    linearized: float
    actual: float

    @property
    def gap(self) -> float:
        """``linearized - (bias + sum of contributions)``: 0 up to rounding on ReLU networks."""
        return self.linearized - (self.bias + float(self.values.double().sum()))

    def window(self) -> torch.Tensor:
        """(W, W, C1) the contributions over the square box around the unit's receptive field
        (cells beyond the edge of the map are zero)."""
        support = self.values.abs().sum(0) > 0
        if not support.any():
            return self.values[:, :1, :1].permute(1, 2, 0) * 0
        rows, cols = support.any(1).nonzero()[:, 0], support.any(0).nonzero()[:, 0]
        top, left = int(rows[0]), int(cols[0])
        side = max(int(rows[-1]) - top + 1, int(cols[-1]) - left + 1)
        top = _square_start(top, int(rows[-1]), side, support.shape[0])
        left = _square_start(left, int(cols[-1]), side, support.shape[1])
        padded = F.pad(self.values, (side, side, side, side))
        return padded[:, top + side : top + 2 * side, left + side : left + 2 * side].permute(1, 2, 0)


def contributions(model: Model, image, from_layer: str, unit: str) -> Contributions:
    """Which ``from_layer`` features, where, made ``unit`` fire on ``image`` (see ``Contributions``).

    ``unit`` is a channel (``layer:c``, explained where it fires most) or a neuron (``layer:c@x,y``).
    """
    target = spatial_channel(model, unit, position=True)
    source = model.spatial_layer(from_layer).name
    _check_order(model, source, target.layer)
    x = model.input(image)
    with torch.no_grad(), capture(model, [source, target.layer]) as cap:
        acts = cap(x)
    a1, later = acts[source], acts[target.layer][0, target.channel]
    if target.position is None:
        row, col = divmod(int(later.argmax()), later.shape[1])
        target = Unit(target.layer, target.channel, (col, row))
    col, row = target.position
    with linear_forward(model.module), torch.enable_grad():
        leaf = a1.detach().clone().requires_grad_(True)
        with capture(model, [source, target.layer], replace={source: lambda out: leaf}) as cap:
            value = cap(x)[target.layer][0, target.channel, row, col]
        (grad,) = torch.autograd.grad(value, leaf)
        with torch.no_grad(), capture(model, [source, target.layer], replace={source: torch.zeros_like}) as cap:
            bias = cap(x)[target.layer][0, target.channel, row, col]
    values = (a1 * grad)[0].detach().cpu()
    return Contributions(str(target), source, x[0].detach().cpu(), values, float(bias), float(value.detach()),
                         float(later[row, col]))


# --- many images: the cases by which a unit fires ------------------------------------------------


@dataclass(frozen=True)
class FiringCases:
    """The distinct ways ``unit`` fires: directions over the ``source`` channels in contribution space.

    Render case m with ``direction_neuron(source, d) + weight * direction(source, d)`` (``render``).
    """

    unit: str
    source: str
    method: str
    directions: torch.Tensor
    """(k, C1) each case's contribution pattern (NMF: positive minus negative part; k-means: centroid)."""
    shares: torch.Tensor
    """(k,) each case's share of the unit's summed contributions over the samples, largest first."""
    samples: torch.Tensor
    """(N, C1) the contribution vectors factored: ``a1 * d unit / d a1`` summed over the window."""
    error: float
    """Relative reconstruction error of ``samples`` by the cases."""
    weight: float
    """Weight of the whole-image ``direction`` term when rendering (0.5 for NMF, 0.25 for k-means)."""

    def render(self, model: Model, config: RenderConfig | None = None):
        """One feature visualization per case (a ``Result``, labelled with each case's share).

        A contribution pattern is a direction to push the source activations only where they are
        never negative (a post-ReLU source such as ``blocks.4.0.act2``); otherwise a warning says so."""
        config = config or RenderConfig(steps=256, size=96, progress=False)
        if not _never_negative(model, self.source):
            warnings.warn(RenderWarning(f"'{self.source}' takes negative values, so a contribution pattern is not an "
                                        "activation direction; choose a post-ReLU source layer"), stacklevel=2)
        objective = sum(obj.direction_neuron(self.source, d, batch=m) + self.weight * obj.direction(self.source, d, batch=m)
                        for m, d in enumerate(self.directions))
        labels = [f"{self.unit} case {m} ({s:.0%})" for m, s in enumerate(self.shares.tolist())]
        return render(model, objective, config, batch=len(self.directions), labels=labels)


def firing_cases(model: Model, unit: str, from_layer: str, images: Sequence | torch.Tensor | None = None,
                 k: int = 4, method: str = "nmf", seed: int = 0, chunk: int = 16) -> FiringCases:
    """Factor the contribution vectors of ``unit`` over many natural images into k cases.

    For each image (default: the 209 bundled photo crops, ``data.photo_crops``), the unit is taken
    where it fires most and its contributions ``a1 * d unit / d a1`` (linearized, as in
    ``contributions``) are summed over the window, giving one vector ``r`` over the source channels.
    ``nmf``: one-sided NMF of ``[max(0, r), max(0, -r)]``. ``kmeans``: k-means of the rows in the upper
    half by total contribution, each scaled by ``1 / sqrt(eps + |r|^2)`` (eps = 0.1 x the median
    ``|r|^2``, so that direction, not size, decides the cluster). For units fed by 1x1 convolutions,
    where ``decompose`` has only one cell, this is the view that separates polysemantic cases.
    """
    if method not in CASE_METHODS:
        raise NeuronscopeError(f"unknown method '{method}': {did_you_mean(method, CASE_METHODS)} (choose nmf or kmeans)")
    target = spatial_channel(model, unit)
    source = model.spatial_layer(from_layer).name
    _check_order(model, source, target.layer)
    batch = _image_batch(model, images)
    if not 1 <= k <= min(len(batch), model.layer(source).channels):
        raise NeuronscopeError(f"k must be in 1..{min(len(batch), model.layer(source).channels)} here, got {k}")
    samples = torch.cat([_summed_contributions(model, batch[i : i + chunk], source, target)
                         for i in range(0, len(batch), chunk)])
    if method == "nmf":
        directions, shares, error = _nmf_cases(samples, k, seed)
    else:
        directions, shares, error = _kmeans_cases(samples, k, seed)
    order = shares.argsort(descending=True)
    return FiringCases(str(target), source, method, directions[order], shares[order], samples, error,
                       0.5 if method == "nmf" else 0.25)


def _summed_contributions(model: Model, x: torch.Tensor, source: str, target: Unit) -> torch.Tensor:
    with torch.no_grad(), capture(model, [source, target.layer]) as cap:
        acts = cap(x)
    a1, later = acts[source], acts[target.layer][:, target.channel]
    where = later.flatten(1).argmax(1)
    rows, cols = where // later.shape[2], where % later.shape[2]
    with linear_forward(model.module), torch.enable_grad():
        leaf = a1.detach().clone().requires_grad_(True)
        with capture(model, [source, target.layer], replace={source: lambda out: leaf}) as cap:
            values = cap(x)[target.layer][torch.arange(len(x)), target.channel, rows, cols]
        (grad,) = torch.autograd.grad(values.sum(), leaf)  # items are independent: one pass, N gradients
    return (a1 * grad).sum((2, 3)).detach().cpu()


def _nmf_cases(samples: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    from ..attribution.factor import ChannelReducer

    reducer = ChannelReducer(k, "NMF", negatives="split", seed=seed)
    loadings = torch.from_numpy(reducer.fit_transform(samples)).float()  # (N, k)
    components = torch.from_numpy(reducer.components).float()
    channels = samples.shape[1]
    directions = components[:, :channels] - components[:, channels:]
    shares = loadings.sum(0) * directions.sum(1) / samples.sum().clamp(min=1e-12)
    return directions, shares, reducer.reconstruction_error(samples)


def _kmeans_cases(samples: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    from sklearn.cluster import KMeans

    totals = samples.sum(1)
    kept = samples[totals >= totals.median()]
    if len(kept) < k:
        raise NeuronscopeError(f"only {len(kept)} strong samples for k = {k} clusters; give more images")
    squared = kept.pow(2).sum(1, keepdim=True)
    scaled = (kept / (0.1 * squared.median() + squared).sqrt()).double().numpy()
    fitted = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(scaled)
    labels = torch.from_numpy(fitted.labels_)
    kept_totals = kept.sum(1)
    shares = torch.stack([kept_totals[labels == m].sum() for m in range(k)]) / kept_totals.sum()
    error = float(np.sqrt(fitted.inertia_) / max(np.linalg.norm(scaled), 1e-12))
    return torch.from_numpy(fitted.cluster_centers_).float(), shares.float(), error


def _image_batch(model: Model, images) -> torch.Tensor:
    if images is None:
        from ..data.photos import photo_crops

        images = [crop for _, crop in photo_crops()]
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return images.to(model.device, model.dtype)
    if len(images) == 0:
        raise NeuronscopeError("no images given")
    return torch.cat([model.input(image) for image in images])


# --- sheets ------------------------------------------------------------------------------------------


def decomposition_sheet(model: Model, decomposition: Decomposition, contributions: Contributions | None = None,
                        config: MechanicsConfig | None = None):
    """The decomposition as a contact sheet (a PIL image). Top row: the unit's own feature
    visualization, the W x W grid of its window cells (faded by magnitude) and the magnitudes. With
    ``contributions`` of an image, a second row: the image with the unit's receptive field lit by how
    much each place contributes, the grid of the contribution vectors (rendered with ``config``) and
    each cell's signed total (red adds to the unit, blue takes away)."""
    from ..images import contact_sheet, diverging, heat_overlay

    d = decomposition
    window = d.vectors.shape[0]
    pictures = [d.target, d.grid(), _cells(diverging(d.magnitudes, None))]
    captions = [f"{d.unit} (neuron)", f"cells at {d.source}", "cell magnitude"]
    title = f"{model.name}: {d.unit} from {d.source}, {window}x{window} window ({d.method})"
    if contributions is not None:
        c = contributions
        vectors = c.window()
        config = config or MechanicsConfig()
        cells, _ = render_cells(model, c.source, vectors.reshape(-1, vectors.shape[-1]), config.render, config.cosine_power)
        grid = tile_cells(cells, vectors.norm(dim=-1))
        pictures += [heat_overlay(c.image, c.values.abs().sum(0)), grid, _cells(diverging(vectors.sum(-1), None))]
        captions += [f"@{c.unit.split('@')[1]} on the image", "contribution vectors",
                     f"{c.bias:.2f} + {float(c.values.sum()):.2f} = {c.linearized:.2f}"]
    return contact_sheet(pictures, captions, columns=3, cell=max(d.grid().shape[-1], 192), title=title)


def _cells(picture: torch.Tensor, side: int = 192) -> torch.Tensor:
    """A small (3, h, w) map as flat squares (nearest neighbour), about ``side`` pixels across."""
    factor = max(1, side // max(picture.shape[-2:]))
    return picture.repeat_interleave(factor, -1).repeat_interleave(factor, -2)


# --- checks and helpers ---------------------------------------------------------------------------


def typical_patch_norm(model: Model, layer: str, window: int, photos: Sequence[str] = ("chelsea", "coffee", "astronaut")) -> float:
    """The median norm of the W x W patches of ``layer``'s activations on a few bundled photos (the
    radius of Method B's pattern)."""
    x = torch.cat([model.input(name) for name in photos])
    with torch.no_grad(), capture(model, [layer]) as cap:
        act = cap(x)[layer]
    patches = F.unfold(act, min(window, *act.shape[-2:]))  # (B, C1*W*W, L)
    return float(patches.norm(dim=1).median())


def _never_negative(model: Model, layer: str) -> bool:
    return bool(layer_activations(model, "chelsea", layer)[1].min() >= 0)


def _check_order(model: Model, source: str, layer: str) -> None:
    if model.depth(layer) <= model.depth(source):
        raise NeuronscopeError(f"'{layer}' must come after '{source}' (its --from layer)")


def _square_start(first: int, last: int, side: int, size: int) -> int:
    """Where a box of ``side`` cells starts that holds first..last, growing past the map's edge."""
    if last - first + 1 == side:
        return first
    return last - side + 1 if first == 0 else first
