"""Semantic dictionaries and activation grids: what a layer sees at each place of an image.

* A **semantic dictionary** lists, at each position, the channels that fire most there, each shown
  by its channel feature visualization ("icon"). Icons are rendered once per model, layer, channel
  and render settings, and cached as PNGs in a folder you choose.
* An **activation grid** renders, for every position p, an image that maximizes the direction of
  that position's whole activation vector a_p (``direction(L, a_p)`` with a cosine power), all
  positions optimized in one batch; cells are tiled like the layer's grid and fade to white with
  the magnitude |a_p|.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import NeuronscopeError
from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, render, render_units
from ..images import SheetDisplay, contact_sheet, file_safe, save_png, save_sheet, to_pil
from ..manifest import build_manifest, image_name
from ..models.model import Model
from ..readout import layer_activations
from ..units import Unit


@dataclass
class SemanticDictionary(SheetDisplay):
    """The top channels at every position of one image's activations at one layer."""

    layer: str
    channels: np.ndarray
    """(H, W, n) channel indices, strongest first."""
    values: np.ndarray
    """(H, W, n) their activations."""
    icons: dict[int, torch.Tensor]
    """Channel -> its feature visualization (3, S, S)."""
    image: torch.Tensor
    manifest: dict = field(default_factory=dict, repr=False)
    """Model, image, layer, top, the channels and values, and the icons' render config (set by
    ``semantic_dictionary``)."""

    def strongest_position(self) -> tuple[int, int]:
        """(x, y) of the position with the largest top activation."""
        row, col = np.unravel_index(np.argmax(self.values[..., 0]), self.values.shape[:2])
        return int(col), int(row)

    def labels_at(self, x: int, y: int) -> list[str]:
        """``layer:channel (activation)`` of the top channels at position (x, y), strongest first."""
        return [f"{self.layer}:{int(c)} ({v:.2f})" for c, v in zip(self.channels[y, x], self.values[y, x])]

    def __repr__(self) -> str:
        height, width, top = self.channels.shape
        return f"SemanticDictionary({self.layer}, {height}x{width} positions, top {top}, {len(self.icons)} channels)"

    def sheet(self) -> Image.Image:
        """The input, the mosaic, and the icons of the top channels at the strongest position."""
        x, y = self.strongest_position()
        strongest = [self.icons[int(c)] for c in self.channels[y, x]]
        mosaic = self.mosaic()
        captions = ["input", f"top channel per position of {self.layer}", *[f"@{x},{y}: {t}" for t in self.labels_at(x, y)]]
        return contact_sheet([self.image, mosaic, *strongest], captions, columns=2 + len(strongest), cell=mosaic.height)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)

    def mosaic(self, cell: int = 48) -> Image.Image:
        """The layer's grid with each position's top channel icon, faded (square root) by its activation."""
        height, width = self.values.shape[:2]
        peak = max(float(self.values[..., 0].max()), 1e-8)
        canvas = Image.new("RGB", (width * cell, height * cell), "white")
        for row in range(height):
            for col in range(width):
                icon = self.icons[int(self.channels[row, col, 0])]
                weight = float(np.clip(self.values[row, col, 0] / peak, 0, 1)) ** 0.5
                faded = icon * weight + (1 - weight)
                canvas.paste(to_pil(faded).resize((cell, cell)), (col * cell, row * cell))
        return canvas


def semantic_dictionary(model: Model, image: str | np.ndarray | torch.Tensor, layer: str, top: int = 4, *,
                        config: RenderConfig | None = None, cache: str | Path | None = None,
                        size: int | tuple[int, int] | None = None) -> SemanticDictionary:
    """The ``top`` channels at every position of ``layer``, with their feature visualizations
    (rendered with ``config``, reused from and saved to ``cache`` when given)."""
    info = model.spatial_layer(layer)
    if not 1 <= top <= info.channels:
        raise NeuronscopeError(f"top must be in 1..{info.channels}, got {top}")
    x, values, channels = _top_channels(model, image, info.name, top, size)
    needed = sorted({int(c) for c in channels.flatten()})
    config = config or RenderConfig(steps=128, size=64)
    icons = channel_icons(model, needed, info.name, config, cache)
    channels, values = channels.cpu().numpy(), values.cpu().numpy()
    manifest = build_manifest("semantic dictionary", model=model, image=image_name(image), layer=info.name, top=top,
                              channels=channels.tolist(), values=values.round(4).tolist(), render=config)
    return SemanticDictionary(info.name, channels, values, icons, x[0].cpu(), manifest)


def dictionary_channels(model: Model, image: str | np.ndarray | torch.Tensor, layer: str, top: int = 4,
                        size: int | tuple[int, int] | None = None) -> list[int]:
    """The channels whose icons ``semantic_dictionary`` needs for ``image`` (one forward pass), so
    that the icons of many images can be rendered together with ``channel_icons`` first."""
    return sorted({int(c) for c in _top_channels(model, image, model.spatial_layer(layer).name, top, size)[2].flatten()})


def _top_channels(model: Model, image, layer: str, top: int, size):
    x, acts = layer_activations(model, image, layer, size)
    values, channels = acts.permute(1, 2, 0).topk(top, dim=-1)  # over channels, at each (row, column)
    return x, values, channels


def channel_icons(model: Model, channels: list[int], layer: str, config: RenderConfig,
                  cache: str | Path | None = None) -> dict[int, torch.Tensor]:
    """Feature visualizations of channels, from the cache where present; new ones are rendered in
    one batched call and written to the cache (one PNG per channel, atomically)."""
    folder = _cache_folder(cache, model, layer, config)
    icons, missing = {}, []
    for c in channels:
        path = folder / f"{c}.png" if folder else None
        if path is not None and path.exists():
            icons[c] = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        else:
            missing.append(c)
    if missing:
        result = render_units(model, [Unit(layer, c) for c in missing], config)
        for c, picture in zip(missing, result.images):
            icons[c] = picture
            if folder:
                save_png(folder / f"{c}.png", picture)
    return icons


@dataclass
class ActivationGrid(SheetDisplay):
    """One feature visualization per position of a layer, for one image."""

    layer: str
    cells: torch.Tensor
    """(H*W, 3, S, S) in row-major order."""
    magnitudes: torch.Tensor
    """(H, W) |a_p| / max |a_p|."""
    image: torch.Tensor
    manifest: dict = field(default_factory=dict, repr=False)
    """Model, image, layer, render config and magnitudes (set by ``activation_grid``)."""

    def picture(self, cell: int | None = None) -> Image.Image:
        """Cells tiled like the layer's grid, faded to white with the activation magnitude."""
        height, width = self.magnitudes.shape
        side = cell or self.cells.shape[-1]
        canvas = Image.new("RGB", (width * side, height * side), "white")
        for p, picture in enumerate(self.cells):
            row, col = divmod(p, width)
            weight = float(self.magnitudes[row, col])
            canvas.paste(to_pil(picture * weight + (1 - weight)).resize((side, side)), (col * side, row * side))
        return canvas

    def __repr__(self) -> str:
        height, width = self.magnitudes.shape
        return f"ActivationGrid({self.layer}, {height}x{width} cells of {self.cells.shape[-1]} px)"

    def sheet(self) -> Image.Image:
        """The input beside the grid picture, at the picture's size."""
        picture = self.picture()
        return contact_sheet([self.image, picture], ["input", f"activation grid of {self.layer}"], columns=2,
                             cell=picture.height)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)


def activation_grid(model: Model, image: str | np.ndarray | torch.Tensor, layer: str, *,
                    config: RenderConfig | None = None, cosine_power: float = 1.0,
                    size: int | tuple[int, int] | None = None) -> ActivationGrid:
    """For every position p of ``layer``: an image maximizing ``direction(layer, a_p)`` (dot x
    cos^p), all cells optimized together in one batch (item p uses seed ``config.seed + p``)."""
    info = model.spatial_layer(layer)
    config = config or RenderConfig(steps=128, size=48)
    x, acts = layer_activations(model, image, info.name, size)  # acts: (C, H, W)
    vectors = acts.flatten(1).T.cpu()  # (H*W, C), row-major positions
    objective = sum(obj.direction(info.name, v, cosine_power=cosine_power, batch=p) for p, v in enumerate(vectors))
    result = render(model, objective, config, batch=len(vectors))
    norms = vectors.norm(dim=1)
    magnitudes = (norms / norms.max().clamp(min=1e-8)).view(acts.shape[1:])
    manifest = build_manifest("activation grid", model=model, image=image_name(image), layer=info.name, render=config,
                              cosine_power=cosine_power, magnitudes=magnitudes.tolist())
    return ActivationGrid(info.name, result.images, magnitudes, x[0].cpu(), manifest)


def _cache_folder(cache: str | Path | None, model: Model, layer: str, config: RenderConfig) -> Path | None:
    if cache is None:
        return None
    # the render's fingerprint covers its settings and the model's weights: retrained weights or
    # another model of the same name never reuse old icons
    return Path(cache) / file_safe(model.name) / layer / config.fingerprint(model)[:12]
