"""How alike two images are, to a model other than the one under study: the cosine of pooled
features, averaged over several depths (like LPIPS, which the MIS paper found to rank models
about as well as DreamSim; without its learned weights)."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..capture import capture
from ..models.depth import representative_layers
from ..models.model import Model


class Similarity:
    """Embeds images so that ``embedding @ embedding.T`` is their similarity (mean cosine over layers).

    Embeddings are kept by a caller's key (an example's key and box), so an image shared by
    several units, or asked for again, runs through the model once.
    """

    def __init__(self, model: Model, size: int = 128, layers: Sequence[str] | None = None, batch: int = 32) -> None:
        self.model, self.size, self.batch = model, int(size), int(batch)
        self.layers = list(layers) if layers is not None else list(representative_layers(model))
        self._kept: dict[Hashable, np.ndarray] = {}
        self.images_embedded = 0

    def embed(self, images: torch.Tensor) -> np.ndarray:
        """(N, 3, H, W) images in [0, 1] -> (N, D) float32 embeddings (each layer's spatial mean,
        unit length, divided by sqrt(layers), concatenated)."""
        parts = []
        with torch.no_grad(), capture(self.model, self.layers) as cap:
            for start in range(0, len(images), self.batch):
                x = images[start : start + self.batch].to(self.model.device, self.model.dtype)
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
                found = cap(x)
                pooled = [F.normalize(_pooled(found[name]).float(), dim=1) for name in self.layers]
                parts.append((torch.cat(pooled, dim=1) / len(pooled) ** 0.5).cpu().numpy())
        self.images_embedded += len(images)
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def embed_keyed(self, keys: Sequence[Hashable], load: Callable[[Hashable], np.ndarray],
                    progress: bool = False) -> dict[Hashable, np.ndarray]:
        """Embeddings of ``keys``; ``load(key)`` gives the (H, W, 3) image in [0, 1] of a key not embedded yet."""
        todo = [key for key in dict.fromkeys(keys) if key not in self._kept]
        with tqdm(total=len(todo), desc=f"similarity ({self.model.name})", unit="image", leave=False,
                  disable=not (progress and len(todo) > self.batch)) as bar:
            for start in range(0, len(todo), 4 * self.batch):
                chunk = todo[start : start + 4 * self.batch]
                images = torch.stack([torch.from_numpy(np.ascontiguousarray(load(key))).permute(2, 0, 1) for key in chunk])
                self._kept.update(zip(chunk, self.embed(images.float())))
                bar.update(len(chunk))
        return {key: self._kept[key] for key in keys}


def _pooled(activation: torch.Tensor) -> torch.Tensor:
    return activation.mean(dim=(2, 3)) if activation.dim() == 4 else activation.flatten(1)
