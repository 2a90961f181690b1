"""Neuron mechanics: how one unit is built from an earlier layer, shown as pictures.

    d = decompose(model, "blocks.4.0:17")                  # the unit's input pattern at blocks.3.2
    c = contributions(model, "blocks.4.0:17", "chelsea")    # what made it fire on a photo
    f = firing_cases(model, "blocks.4.0:17")               # the distinct ways it fires on natural crops
    d.sheet(c.explain(model))                               # = decomposition_sheet(d, c.explain(model))

``decompose`` takes the unit's input pattern over a window of the earlier layer, either its expanded
weights (Method A, the default) or the pattern found by optimizing that layer directly (Method B),
and feature-visualizes each window cell (Olah et al., Circuits; Lucid issue #110). ``contributions``
does the same for the attribution vectors ``a1 * d a2 / d a1`` of one image, ``firing_cases`` factors
such contribution vectors over many natural images.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..capture import capture
from ..errors import NeuronscopeError, did_you_mean
from ..featurevis.render import RenderConfig
from ..images import SheetDisplay, contact_sheet, diverging, flat_cells, heat_overlay, save_sheet
from ..manifest import build_manifest, image_name
from ..models.model import Model
from ..overrides import linear_forward
from ..units import Unit
from .checks import check_order, never_negative, spatial_channel
from .expanded import expanded_weights
from .optimal import PatternConfig, optimal_input_pattern, typical_patch_norm
from .pictures import render_cells, tile_cells

METHODS = ("weights", "optimize")


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
class Decomposition(SheetDisplay):
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
    model: str | None = None
    """The model's name (for the sheet's title)."""
    manifest: dict = field(default_factory=dict, repr=False, compare=False)
    """Model, unit, source layer, method, window, magnitudes and config (set by ``decompose``)."""

    @property
    def magnitudes(self) -> torch.Tensor:
        """(W, W) the norm of each cell's vector: how much that position matters."""
        return self.vectors.norm(dim=-1)

    def grid(self) -> torch.Tensor:
        """(3, W*S, W*S) the cells tiled, faded toward grey where the magnitude is small."""
        return tile_cells(self.cells, self.magnitudes)

    def __repr__(self) -> str:
        window = len(self.vectors)
        return f"Decomposition({self.unit} from {self.source}, {window}x{window} window, {self.method})"

    def sheet(self, contributions: ExplainedContributions | None = None) -> Image.Image:
        """``decomposition_sheet``: the top row, and the contributions of an image below it if given."""
        return decomposition_sheet(self, contributions)

    def save(self, path: str | Path, contributions: ExplainedContributions | None = None) -> Path:
        """``sheet(contributions)`` as a PNG at ``path`` and the manifest beside it (.json), with the
        image and the sum rule's terms of ``contributions`` when given."""
        manifest = self.manifest
        if contributions is not None:
            c = contributions.contributions
            manifest = {**manifest, "image": c.manifest.get("image"), **c.summary()}
        return save_sheet(path, self.sheet(contributions), manifest)


def decompose(model: Model, unit: str, from_layer: str | None = None, config: MechanicsConfig | None = None) -> Decomposition:
    """Decomposed feature visualization of ``unit`` (a channel; its neuron at the layer's centre).

    ``from_layer`` defaults to ``previous_layer``: the deepest curated layer that runs before the unit
    (for ``blocks.4.0`` that is ``blocks.3.2``; for a part of a block, the block before it).
    """
    config = config or MechanicsConfig()
    target = spatial_channel(model, unit)
    source = model.spatial_layer(from_layer).name if from_layer is not None else previous_layer(model, target.layer)
    weights = expanded_weights(model, str(target), source, window=config.window).weights[..., 0]  # (W, W, C1)
    if config.method == "weights":
        vectors = weights
    else:
        window = weights.shape[0]
        nonnegative = config.nonnegative if config.nonnegative is not None else never_negative(model, source)
        pattern = optimal_input_pattern(model, str(target), source, window, PatternConfig(
            steps=config.optimize_steps, nonnegative=nonnegative, seed=config.render.seed,
            radius=typical_patch_norm(model, source, window)))
        vectors = pattern.permute(1, 2, 0).contiguous()
    cells, own = render_cells(model, vectors.reshape(-1, vectors.shape[-1]), source, config.render,
                             config.cosine_power, target)
    found = Decomposition(str(target), source, config.method, vectors, cells, own, model.name)
    return replace(found, manifest=build_manifest(
        "decomposed feature visualization", model=model, unit=found.unit, source=source, method=found.method,
        window=len(vectors), magnitudes=found.magnitudes.tolist(), config=config))


def previous_layer(model: Model, layer: str) -> str:
    """The deepest curated spatial layer that runs before ``layer``: the default ``from`` layer."""
    depth = model.depth(layer)
    earlier = [info.name for info in model.layers if info.spatial is not None and model.depth(info.name) < depth]
    if not earlier:
        raise NeuronscopeError(f"no curated layer runs before '{layer}'; give the earlier layer explicitly")
    return earlier[-1]


# --- one image: contributions -------------------------------------------------------------------


@dataclass(frozen=True)
class Contributions(SheetDisplay):
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
    manifest: dict = field(default_factory=dict, repr=False, compare=False)
    """Model, image, source layer and the sum rule's terms (set by ``contributions``)."""

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

    def summary(self) -> dict:
        """The sum rule's terms and each window cell's total, as plain numbers (for manifests)."""
        return {"neuron": self.unit, "bias": self.bias, "linearized": self.linearized, "actual": self.actual,
                "contribution_per_cell": self.window().sum(-1).tolist()}

    def __repr__(self) -> str:
        return (f"Contributions({self.unit} from {self.source}: bias {self.bias:.3f} + "
                f"{float(self.values.sum()):.3f} = linearized {self.linearized:.3f}, actual {self.actual:.3f})")

    def sheet(self) -> Image.Image:
        """The image lit where ``source`` contributes, and each window cell's signed total (red adds,
        blue takes away), captioned with the sum rule: the second row of ``decomposition_sheet``
        without the rendered contribution vectors (``explain`` renders them)."""
        return contact_sheet(self._pictures(), self._captions(), columns=2, cell=192)

    def explain(self, model: Model, config: MechanicsConfig | None = None) -> ExplainedContributions:
        """The contribution vector of each window cell feature-visualized, as ``decompose`` does for
        the weights (``config``: its ``render`` and ``cosine_power``)."""
        config = config or MechanicsConfig()
        vectors = self.window()
        cells, _ = render_cells(model, vectors.reshape(-1, vectors.shape[-1]), self.source, config.render, config.cosine_power)
        return ExplainedContributions(self, cells)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)

    def _pictures(self, grid: torch.Tensor | None = None) -> list[torch.Tensor]:
        middle = [] if grid is None else [grid]
        return [heat_overlay(self.image, self.values.abs().sum(0)), *middle, flat_cells(diverging(self.window().sum(-1), None))]

    def _captions(self, grid: bool = False) -> list[str]:
        total = f"{self.bias:.2f} + {float(self.values.sum()):.2f} = {self.linearized:.2f}"
        return [f"@{self.unit.split('@')[1]} on the image", *(["contribution vectors"] if grid else []), total]


def contributions(model: Model, unit: str, image, from_layer: str | None = None) -> Contributions:
    """Which ``from_layer`` features (default ``previous_layer``), where, made ``unit`` fire on
    ``image`` (see ``Contributions``).

    ``unit`` is a channel (``layer:c``, explained where it fires most) or a neuron (``layer:c@x,y``).
    """
    target = spatial_channel(model, unit, position=True)
    source = model.spatial_layer(from_layer).name if from_layer is not None else previous_layer(model, target.layer)
    check_order(model, source, target.layer)
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
    found = Contributions(str(target), source, x[0].detach().cpu(), values, float(bias), float(value.detach()),
                          float(later[row, col]))
    return replace(found, manifest=build_manifest("contributions", model=model, image=image_name(image), source=source,
                                                   **found.summary()))


@dataclass(frozen=True)
class ExplainedContributions(SheetDisplay):
    """Contributions with each window cell's contribution vector feature-visualized
    (``Contributions.explain``): the second row of ``decomposition_sheet``."""

    contributions: Contributions
    cells: torch.Tensor
    """(W*W, 3, S, S) each window cell's visualization, row-major, not yet faded by magnitude."""

    def grid(self) -> torch.Tensor:
        """(3, W*S, W*S) the cells tiled, faded toward grey where the contribution is small."""
        return tile_cells(self.cells, self.contributions.window().norm(dim=-1))

    def __repr__(self) -> str:
        window = len(self.contributions.window())
        return f"ExplainedContributions({self.contributions.unit} from {self.contributions.source}, {window}x{window} cells)"

    def sheet(self) -> Image.Image:
        """The image lit where the source contributes, the cells' grid and each cell's signed total."""
        c = self.contributions
        return contact_sheet(c._pictures(self.grid()), c._captions(grid=True), columns=3, cell=192)


# --- sheets ------------------------------------------------------------------------------------------


def decomposition_sheet(decomposition: Decomposition, contributions: ExplainedContributions | None = None) -> Image.Image:
    """The decomposition as a contact sheet (a PIL image). Top row: the unit's own feature
    visualization, the W x W grid of its window cells (faded by magnitude) and the magnitudes. With
    the ``contributions`` of an image (``Contributions.explain``), a second row: the image with the
    unit's receptive field lit by how much each place contributes, the grid of the contribution
    vectors and each cell's signed total (red adds to the unit, blue takes away)."""
    d = decomposition
    if isinstance(contributions, Contributions):
        raise NeuronscopeError("the contributions row shows their vectors rendered: give contributions.explain(model)")
    window = d.vectors.shape[0]
    pictures = [d.target, d.grid(), flat_cells(diverging(d.magnitudes, None))]
    captions = [f"{d.unit} (neuron)", f"cells at {d.source}", "cell magnitude"]
    title = f"{d.unit} from {d.source}, {window}x{window} window ({d.method})"
    title = f"{d.model}: {title}" if d.model else title
    if contributions is not None:
        pictures += contributions.contributions._pictures(contributions.grid())
        captions += contributions.contributions._captions(grid=True)
    return contact_sheet(pictures, captions, columns=3, cell=max(d.grid().shape[-1], 192), title=title)


# --- checks and helpers ---------------------------------------------------------------------------


def _square_start(first: int, last: int, side: int, size: int) -> int:
    """Where a box of ``side`` cells starts that holds first..last, growing past the map's edge."""
    if last - first + 1 == side:
        return first
    return last - side + 1 if first == 0 else first
