"""Weights between layers, read through gradients: how a unit is built from the layer below.

``expanded_weights(model, to, from_layer)`` gives ``E[dy, dx, i, j] = d a2[j, centre] / d a1[i, dy, dx]``
with every nonlinearity between the layers linearized (ReLU/ReLU6 backward = identity, max-pool
backward = average-pool backward). Where the layers interact linearly this is the true linear map,
however the model stores it (1x1 bottlenecks, depthwise convs, BatchNorm, residuals), so nothing
needs to know the architecture (Olah et al., *Visualizing Weights*, Circuits thread).

Conventions: the from-layer is fed its own activations on a blank image sized so that its grid is
exactly ``window`` x ``window`` (the content does not matter once linearized); the centre of the
later layer is ``((H2 - 1) // 2, (W2 - 1) // 2)``; ``dy, dx`` index the window from its top-left.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from ..capture import Copies, capture
from ..errors import NeuronscopeError
from ..factorization import nmf
from ..images import SheetDisplay, contact_sheet, diverging, flat_cells, listing
from ..models.model import Model
from ..names import LOGITS
from ..overrides import linearized
from ..units import Unit, parse_unit


class WindowTooSmall(NeuronscopeError):
    """The window cuts off weights: the kernels between the layers reach further."""


@dataclass
class ExpandedWeights(SheetDisplay):
    """``weights[dy, dx, i, j]``: from channel i of ``source`` at window position (dy, dx) to
    channel ``targets[j]`` of ``target`` at its centre."""

    source: str
    target: str
    targets: list[int]
    weights: torch.Tensor

    def __repr__(self) -> str:
        window, _, inputs, outputs = self.weights.shape
        to = f"{self.target}:{self.targets[0]}" if outputs == 1 else f"{self.target} ({outputs} channels)"
        return f"ExpandedWeights({self.source} -> {to}, {window}x{window} window, {inputs} inputs)"

    def sheet(self, model: Model | None = None, output: int = 0, top: int = 6, config=None) -> Image.Image:
        """Output ``targets[output]``'s ``top`` strongest inputs. With ``model``, a first row of feature
        visualizations (the unit, then each input; ``config``: a RenderConfig, default 128 steps at
        64 px); then the weights summed over inputs and each input's weights over the window (blue
        negative, red positive; one scale for the inputs)."""
        unit, strongest, window = f"{self.target}:{self.targets[output]}", self.top_inputs(output, top), len(self.weights)
        scale = float(self.weights[..., output].abs().max())
        heatmaps = [flat_cells(diverging(self.weights[:, :, i, output], scale), 96) for i, _ in strongest]
        pictures = [flat_cells(diverging(self.weights[..., output].sum(2), None), 96), *heatmaps]
        captions = ["summed over inputs", *[f"weights {self.source}:{i}" for i, _ in strongest]]
        title = f"{unit} from {self.source} (expanded weights, {window}x{window})"
        if model is not None:
            from ..featurevis.render import RenderConfig, render_units

            config = config or RenderConfig(steps=128, size=64)
            pictures = [*render_units(model, [unit, *[f"{self.source}:{i}" for i, _ in strongest]], config).images, *pictures]
            captions = [unit, *[f"{self.source}:{i} ({v:+.3f})" for i, v in strongest], *captions]
            title = f"{model.name}: {title}"
        return contact_sheet(pictures, captions, columns=len(strongest) + 1, cell=96, title=title)

    def strength(self) -> torch.Tensor:
        """(C1, C2) Frobenius norm over the window of each (input, output) pair."""
        return self.weights.pow(2).sum((0, 1)).sqrt()

    def sign(self) -> torch.Tensor:
        """(C1, C2) sign of the summed weight of each pair."""
        return torch.sign(self.weights.sum((0, 1)))

    def top_inputs(self, output: int = 0, n: int = 8) -> list[tuple[int, float]]:
        """The n input channels that drive output ``targets[output]`` most: (channel, signed strength)."""
        strength = self.strength()[:, output] * self.sign()[:, output]
        order = strength.abs().argsort(descending=True)[:n]
        return [(int(i), float(strength[i])) for i in order]

    def top_outputs(self, source_channel: int, n: int = 8) -> list[tuple[int, float]]:
        """The n output channels that input ``source_channel`` drives most: (channel, signed strength)."""
        strength = self.strength()[source_channel] * self.sign()[source_channel]
        order = strength.abs().argsort(descending=True)[:n]
        return [(self.targets[int(j)], float(strength[j])) for j in order]


MAX_WINDOW = 31


def expanded_weights(model: Model, to: str, from_layer: str, window: int | None = None, chunk: int = 64,
                     clip: bool = False) -> ExpandedWeights:
    """Expanded weights from ``from_layer`` to ``to`` (a later layer, or one channel ``layer:c``).

    ``window`` None: the smallest odd window from 5 up that holds every weight. An explicit
    window is checked on a window two cells larger: if any weight falls outside it, the window is
    too small for the kernels between the layers and an error says so, unless ``clip`` is True:
    then the weights inside the window are returned as they are (for distant layers, whose full
    weights would need a window wider than the layer itself).
    """
    if window is None:
        for size in range(5, MAX_WINDOW + 1, 2):
            try:
                return expanded_weights(model, to, from_layer, size, chunk)
            except WindowTooSmall:
                continue
        raise NeuronscopeError(f"the weights from '{from_layer}' to '{to}' reach beyond a {MAX_WINDOW}x{MAX_WINDOW} window")
    source = model.layer(from_layer)
    unit = parse_unit(model, to) if ":" in to else Unit(model.layer(to).name)
    target = model.layer(unit.layer)
    if unit.layer == LOGITS or target.spatial is None or source.spatial is None:
        raise NeuronscopeError("expanded weights need two layers with spatial extent (not logits or pooled outputs)")
    if model.depth(target.name) <= model.depth(source.name):
        raise NeuronscopeError(f"'{target.name}' must come after '{source.name}' (its --from layer)")
    if window < 1:
        raise NeuronscopeError(f"window must be at least 1, got {window}")
    outputs = [unit.channel] if unit.channel is not None else list(range(target.channels))
    if clip:
        return ExpandedWeights(source.name, target.name, outputs, _weights(model, source.name, target.name, unit, window, chunk))
    wide = _weights(model, source.name, target.name, unit, window + 2, chunk)
    inner = wide[1:-1, 1:-1]
    if wide.abs().sum() - inner.abs().sum() > 1e-6 * max(float(wide.abs().sum()), 1e-12):
        raise WindowTooSmall(
            f"window {window} is too small: weights from '{source.name}' to '{target.name}' reach beyond it; "
            f"use a window of at least {window + 2}"
        )
    return ExpandedWeights(source.name, target.name, outputs, inner.contiguous())


def _weights(model: Model, source_name: str, target_name: str, unit: Unit, window: int, chunk: int) -> torch.Tensor:
    source, target = model.layer(source_name), model.layer(target_name)
    # A network that runs at its own size only (fixed position embeddings, a flattening head)
    # is probed whole, and the window is cut around the centre afterwards.
    whole = model.fixed_input_size
    probe = _window_probe(model, source.name, None if whole else window)
    outputs = [unit.channel] if unit.channel is not None else list(range(target.channels))
    columns = []
    with linearized(model.module), torch.enable_grad():
        for start in range(0, len(outputs), chunk):
            group = outputs[start : start + chunk]
            check = None if whole else (lambda output: _check_window(output, source.name, window))
            copies = Copies(len(group), check=check)
            with capture(model, [source.name, target.name], replace={source.name: copies}) as cap:
                later = cap(probe)[target.name]
            height, width = later.shape[-2:]
            centre = later[torch.arange(len(group)), torch.tensor(group), (height - 1) // 2, (width - 1) // 2]
            (grad,) = torch.autograd.grad(centre.sum(), copies.tensor)
            if whole:
                grad = _centre_window(grad, (height, width), window)
            columns.append(grad.detach())  # (n, C1, W, W)
    return torch.cat(columns).permute(2, 3, 1, 0).cpu()  # (W, W, C1, C2)


def _centre_window(grad: torch.Tensor, target_size: tuple[int, int], window: int) -> torch.Tensor:
    """The ``window`` x ``window`` cells of a whole-layer gradient (n, C1, H, W) around the cell
    under the target's centre, zero where the window leaves the layer."""
    height, width = grad.shape[-2:]
    row = ((target_size[0] - 1) // 2) * height // target_size[0] + (height // target_size[0] - 1) // 2
    col = ((target_size[1] - 1) // 2) * width // target_size[1] + (width // target_size[1] - 1) // 2
    half = window // 2
    padded = F.pad(grad, (window, window, window, window))
    top, left = row - half + window, col - half + window
    return padded[..., top:top + window, left:left + window]


def _window_probe(model: Model, layer: str, window: int | None) -> torch.Tensor:
    """A blank input sized so that ``layer``'s grid is ``window`` x ``window`` (None: the model's size)."""
    if window is None:
        return torch.zeros(1, model.input_channels, *model.input_size, device=model.device, dtype=model.dtype)
    source = model.layer(layer)
    stride_h = model.input_size[0] // source.spatial[0]
    stride_w = model.input_size[1] // source.spatial[1]
    return torch.zeros(1, model.input_channels, window * stride_h, window * stride_w, device=model.device, dtype=model.dtype)


def _check_window(output: torch.Tensor, layer: str, window: int) -> None:
    if output.shape[-2:] != (window, window):
        raise NeuronscopeError(f"'{layer}' is {tuple(output.shape[-2:])} at this input size, not "
                               f"{window}x{window}; its stride does not divide the input evenly")


def weight_picture(weights: ExpandedWeights, output: int = 0, seed: int = 0) -> torch.Tensor:
    """One-sided NMF of a unit's weights into 3 components, read as RGB over the window: (3, W, W).

    The window positions are rows and the input channels, split into positive and negative parts,
    are columns; smooth colour regions mean the unit learned spatial structure.
    """
    values = weights.weights[..., output]  # (W, W, C1)
    maps = torch.from_numpy(nmf(values, 3, negatives="split", seed=seed).loadings).float()  # (W, W, 3)
    return (maps / maps.max().clamp(min=1e-12)).permute(2, 0, 1)


def spatial_position_images(model: Model, weights: ExpandedWeights, output: int = 0, config=None) -> torch.Tensor:
    """For each window cell (dy, dx): a feature visualization of the weight vector ``E[dy, dx, :, j]``
    at the earlier layer (``direction_neuron`` at the centre), blended toward light grey by the
    cell's weight magnitude, tiled into one (3, W*S, W*S) image."""
    from ..featurevis.render import RenderConfig

    window = weights.weights.shape[0]
    vectors = weights.weights[..., output].reshape(window * window, -1)
    cells, _ = render_cells(model, weights.source, vectors, config or RenderConfig(steps=128, size=48))
    return tile_cells(cells, vectors.norm(dim=1).view(window, window))


def render_cells(model: Model, layer: str, vectors: torch.Tensor, config, cosine_power: float = 0.0,
                 unit: Unit | None = None, seeds: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Feature-visualize each (C1,) row of ``vectors`` as ``direction_neuron`` at the centre of
    ``layer`` (``config``: a RenderConfig), in one batch with ``unit``'s own neuron if given:
    (N, 3, S, S) and the unit's image (or None). ``seeds``: one per item (default: the config's
    seed + item index)."""
    import warnings

    from ..featurevis import objectives as obj
    from ..featurevis.render import RenderWarning, render

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


def spatial_channel(model: Model, unit: str, position: bool = False) -> Unit:
    """``unit`` parsed, which must be a channel of a layer with spatial extent (its neuron is taken
    at the centre unless ``position`` allows ``@x,y``)."""
    parsed = parse_unit(model, unit)
    if parsed.channel is None or parsed.layer == LOGITS or model.layer(parsed.layer).spatial is None:
        raise NeuronscopeError(f"give a channel of a spatial layer, like blocks.4.2:7 (got '{unit}')")
    if parsed.position is not None and not position:
        raise NeuronscopeError(f"'{unit}': the unit is taken at the centre of its layer; drop the '@x,y'")
    return parsed


def check_order(model: Model, source: str, layer: str) -> None:
    """``layer`` must run after ``source`` (its --from layer)."""
    if model.depth(layer) <= model.depth(source):
        raise NeuronscopeError(f"'{layer}' must come after '{source}' (its --from layer)")


def never_negative(model: Model, layer: str) -> bool:
    """Whether ``layer`` is never negative on a photo (post-ReLU): then a pattern over it is a direction
    to push its activations."""
    from ..readout import layer_activations

    return bool(layer_activations(model, "chelsea", layer)[1].min() >= 0)


def objective_views(model: Model, unit: str, config=None):
    """A unit three ways, side by side (a ``Result`` of 3 images): its neuron at the centre, its whole
    channel, and the cosine-weighted direction of its channel (``dot * max(0.1, cos)``), which asks
    for inputs where this channel dominates the activation vector rather than merely being large."""
    from ..featurevis import objectives as obj
    from ..featurevis.render import RenderConfig, render

    parsed = spatial_channel(model, unit)
    basis = torch.zeros(model.layer(parsed.layer).channels)
    basis[parsed.channel] = 1.0
    objective = (obj.neuron(parsed.layer, parsed.channel, batch=0) + obj.channel(parsed.layer, parsed.channel, batch=1)
                 + obj.direction(parsed.layer, basis, cosine_power=1.0, batch=2))
    labels = [f"{parsed} neuron", f"{parsed} channel", f"{parsed} direction x cos"]
    return render(model, objective, config or RenderConfig(), batch=3, labels=labels)


def optimal_input_pattern(model: Model, unit: str, from_layer: str, window: int = 5, *, steps: int = 200,
                          nonnegative: bool = False, step: float = 0.5, seed: int = 0, radius: float = 1.0) -> torch.Tensor:
    """Method B of decomposed feature visualization: the (C1, W, W) pattern of ``from_layer``
    activations, of norm ``radius`` (and non-negative if asked), that maximizes ``unit`` at the centre of
    its layer, found by projected gradient ascent on the real (not linearized) network: plain
    normalized steps, not Adam, whose per-coordinate scaling would converge to the sign pattern.

    On a linear path the optimum is the expanded weights' direction; with non-negativity, their
    positive part.
    """
    source = model.layer(from_layer)
    target = parse_unit(model, unit)
    if target.channel is None or target.layer == LOGITS or model.depth(target.layer) <= model.depth(source.name):
        raise NeuronscopeError(f"give a channel of a layer after '{source.name}', like {source.name}:0 of a later layer")
    probe = _window_probe(model, source.name, window)
    generator = torch.Generator().manual_seed(seed)
    pattern = torch.rand(1, source.channels, window, window, generator=generator).to(model.device, model.dtype)
    pattern = (pattern * radius / pattern.norm()).requires_grad_(True)
    with torch.enable_grad(), capture(model, [source.name, target.layer], replace={source.name: lambda out: pattern}) as cap:
        for _ in range(steps):
            later = cap(probe)[target.layer][0, target.channel]
            (grad,) = torch.autograd.grad(later[(later.shape[0] - 1) // 2, (later.shape[1] - 1) // 2], pattern)
            with torch.no_grad():
                pattern.add_(step * radius * grad / grad.norm().clamp(min=1e-12))
                if nonnegative:
                    pattern.clamp_(min=0)
                pattern.mul_(radius / pattern.norm().clamp(min=1e-12))
    return pattern.detach()[0].cpu()


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
        from ..featurevis import objectives as obj
        from ..featurevis.render import RenderConfig, render

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
