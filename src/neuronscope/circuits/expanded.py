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

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..capture import Copies, capture
from ..errors import NeuronscopeError
from ..featurevis.render import RenderConfig, Result, render_units
from ..images import SheetDisplay, contact_sheet, diverging, flat_cells, listing, save_sheet
from ..manifest import build_manifest
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
    manifest: dict = field(default_factory=dict, repr=False)
    """Model, unit, source layer and window (set by ``expanded_weights``)."""

    def __repr__(self) -> str:
        window, _, inputs, outputs = self.weights.shape
        to = f"{self.target}:{self.targets[0]}" if outputs == 1 else f"{self.target} ({outputs} channels)"
        return f"ExpandedWeights({self.source} -> {to}, {window}x{window} window, {inputs} inputs)"

    def sheet(self, output: int = 0, top: int = 6) -> Image.Image:
        """Output ``targets[output]``'s ``top`` strongest inputs: the weights summed over inputs and
        each input's weights over the window (blue negative, red positive; one scale for the inputs).
        ``explain`` adds their feature visualizations."""
        pictures, captions, title = self._heatmaps(output, self.top_inputs(output, top))
        return contact_sheet(pictures, captions, columns=len(pictures), cell=96, title=title)

    def explain(self, model: Model, output: int = 0, top: int = 6, config: RenderConfig | None = None) -> ExplainedWeights:
        """Output ``targets[output]``'s ``top`` strongest inputs with feature visualizations of the
        unit and of each input (``config``: default 128 steps at 64 px), rendered in one batch."""
        config = config or RenderConfig(steps=128, size=64)
        unit, strongest = f"{self.target}:{self.targets[output]}", self.top_inputs(output, top)
        icons = render_units(model, [unit, *[f"{self.source}:{i}" for i, _ in strongest]], config)
        manifest = build_manifest("expanded weights", model=model, unit=unit, source=self.source, window=len(self.weights),
                                  top_inputs=strongest, render=config)
        return ExplainedWeights(self, model.name, output, strongest, icons, manifest)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)

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

    def _heatmaps(self, output: int, strongest: list[tuple[int, float]]) -> tuple[list, list[str], str]:
        unit, window = f"{self.target}:{self.targets[output]}", len(self.weights)
        scale = float(self.weights[..., output].abs().max())
        heatmaps = [flat_cells(diverging(self.weights[:, :, i, output], scale), 96) for i, _ in strongest]
        pictures = [flat_cells(diverging(self.weights[..., output].sum(2), None), 96), *heatmaps]
        captions = ["summed over inputs", *[f"weights {self.source}:{i}" for i, _ in strongest]]
        return pictures, captions, f"{unit} from {self.source} (expanded weights, {window}x{window})"


@dataclass
class ExplainedWeights(SheetDisplay):
    """Expanded weights with feature visualizations of the unit and its strongest inputs
    (``ExpandedWeights.explain``)."""

    weights: ExpandedWeights
    model: str
    """The model's name."""
    output: int
    """Index into ``weights.targets`` of the unit shown."""
    inputs: list[tuple[int, float]]
    """The strongest inputs shown: (source channel, signed strength)."""
    icons: Result
    """The unit's feature visualization, then each input's."""
    manifest: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        w = self.weights
        return (f"ExplainedWeights({w.source} -> {w.target}:{w.targets[self.output]}, "
                f"{len(self.inputs)} inputs shown: {listing([str(c) for c, _ in self.inputs])})")

    def sheet(self) -> Image.Image:
        """First row: the unit's feature visualization and each input's, captioned with its signed
        strength; second row: the weights summed over inputs and each input's weights over the window."""
        w, unit = self.weights, f"{self.weights.target}:{self.weights.targets[self.output]}"
        pictures, captions, title = w._heatmaps(self.output, self.inputs)
        pictures = [*self.icons.images, *pictures]
        captions = [unit, *[f"{w.source}:{i} ({v:+.3f})" for i, v in self.inputs], *captions]
        return contact_sheet(pictures, captions, columns=len(self.inputs) + 1, cell=96, title=f"{self.model}: {title}")

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)


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
    unit = parse_unit(model, to) if ":" in to else Unit(model.layer(to).name)
    if window is None:
        found = _smallest_window(model, unit, from_layer, chunk)
    else:
        found = _expanded(model, unit, from_layer, window, chunk, clip)
    found.manifest = build_manifest("expanded weights", model=model, unit=str(unit), source=found.source,
                                    window=len(found.weights), clip=clip)
    return found


def _smallest_window(model: Model, unit: Unit, from_layer: str, chunk: int) -> ExpandedWeights:
    for size in range(5, MAX_WINDOW + 1, 2):
        try:
            return _expanded(model, unit, from_layer, size, chunk, clip=False)
        except WindowTooSmall:
            continue
    raise NeuronscopeError(f"the weights from '{from_layer}' to '{unit}' reach beyond a {MAX_WINDOW}x{MAX_WINDOW} window")


def _expanded(model: Model, unit: Unit, from_layer: str, window: int, chunk: int, clip: bool) -> ExpandedWeights:
    source = model.layer(from_layer)
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
    probe = window_probe(model, source.name, None if whole else window)
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


def window_probe(model: Model, layer: str, window: int | None) -> torch.Tensor:
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
