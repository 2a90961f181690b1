"""Caricatures in context: several models at matched depth, and cosine-similarity overlays."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...capture import capture
from ...errors import NeuronscopeError
from ...images import SheetDisplay, contact_sheet
from ...models.depth import matched_layers
from ...models.model import Model
from .core import CaricatureConfig, Caricatures, caricature


@dataclass
class ModelCaricatures(SheetDisplay):
    """Caricatures of one image by several models at matched depth: one ``Caricatures`` per model,
    with the relative depth of each of its layers."""

    models: list[str]
    results: list[Caricatures]
    depths: list[list[float]]

    def sheet(self):
        """One row per model: the input as that model sees it, then one caricature per layer."""
        images, captions = [], []
        for model, result, depths in zip(self.models, self.results, self.depths):
            images += [result.reference, *result.images]
            captions += [model, *[f"{layer} ({depth:.2f})" for layer, depth in zip(result.layers, depths)]]
        return contact_sheet(images, captions, columns=len(self.results[0].layers) + 1)

    @property
    def manifest(self) -> dict:
        """The models' own manifests, one run each."""
        return {"kind": "caricatures across models", "models": self.models, "runs": [r.manifest for r in self.results]}


def caricatures_across_models(models: Sequence[Model], image: str | np.ndarray, layers: Sequence[str],
                              config: CaricatureConfig | None = None) -> ModelCaricatures:
    """Caricatures of one image by several models: ``models[0]`` at ``layers``, every other model
    at its curated spatial layers of the nearest relative depth (``models.matched_layers``)."""
    models = list(models)
    results = [caricature(m, image, matched_layers(models[0], layers, m) if i else list(layers), config)
               for i, m in enumerate(models)]
    return ModelCaricatures([m.name for m in models], results,
                            [[m.depth(layer) for layer in r.layers] for m, r in zip(models, results)])


def attributive_sheet(results: Sequence[Caricatures]):
    """Attributive caricatures of one image (e.g. one result per layer) in one row: the input, then
    every result's caricatures in order, captioned ``layer · target`` (a PIL image)."""
    results = list(results)
    if not results:
        raise NeuronscopeError("no caricatures given")
    images = [results[0].reference] + [image for result in results for image in result.images]
    captions = ["input"] + [label for result in results for label in result.labels]
    return contact_sheet(images, captions, columns=len(images))


def similarity_maps(model: Model, reference: torch.Tensor, others: torch.Tensor, layer: str,
                    position: tuple[int, int]) -> torch.Tensor:
    """``cos(a0_p, a_q)`` for every position q: how much each place of each image (``others``,
    (N, C, H, W)) looks, to ``layer``, like position p = (x, y) of the reference (1, C, H, W)."""
    with torch.no_grad(), capture(model, [layer]) as cap:
        a0 = cap(reference)[layer][0]
        a = cap(others)[layer]
    height, width = a0.shape[1:]
    x, y = position
    if not (0 <= x < width and 0 <= y < height):
        raise NeuronscopeError(f"position ({x}, {y}) is outside layer '{layer}', which is {width}x{height} here")
    return F.cosine_similarity(a, a0[:, y, x].view(1, -1, 1, 1), dim=1)


def similarity_overlay(image: torch.Tensor, similarity: torch.Tensor, position: tuple[int, int] | None = None):
    """The image dimmed, with the similarity as a yellow glow, and the chosen cell outlined.

    The glow spans the map's median (dark) to 1 (bright): it marks the places most like the cell.
    """
    from PIL import ImageDraw

    from ...images import to_pil

    height, width = image.shape[-2:]
    floor = similarity.median()
    scaled = ((similarity - floor) / (1 - floor).clamp(min=1e-6)).clamp(0, 1)
    heat = F.interpolate(scaled[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    glow = torch.stack([heat, heat * 0.85, heat * 0.1])
    picture = to_pil(image.cpu() * 0.3 + glow.cpu() * 0.7)
    if position is not None:
        cell_h, cell_w = height / similarity.shape[0], width / similarity.shape[1]
        x, y = position
        ImageDraw.Draw(picture).rectangle([x * cell_w, y * cell_h, (x + 1) * cell_w - 1, (y + 1) * cell_h - 1],
                                          outline=(0, 200, 255), width=2)
    return picture


def similarity_sheet(model: Model, result: Caricatures, index: int, position: tuple[int, int]):
    """For caricature ``index``: where the input and the caricature look like the input's position p."""
    layer = result.layers[index]
    both = torch.stack([result.reference, result.images[index]]).to(model.device, model.dtype)
    maps = similarity_maps(model, both[:1], both, layer, position).cpu()
    pictures = [similarity_overlay(both[0], maps[0], position), similarity_overlay(both[1], maps[1], position)]
    captions = [f"input: cos to ({position[0]},{position[1]})", f"caricature {layer}"]
    return contact_sheet(pictures, captions, columns=2)
