"""What runs inside Ray's worker processes: decoding source items, the model's pass over a batch,
and rendering a chunk of units. Nothing here writes a file; results go back to the driver."""
from __future__ import annotations

import pickle

import numpy as np
import torch

from ..capture import capture
from ..data.sources import ImageSource
from ..examples.loading import Decoded, Preparer
from ..examples.running import summarize
from ..gallery.config import GalleryConfig
from ..gallery.unit_views import RenderedChunk, render_pictures
from ..models.model import Model


def place(model: Model, gpus: float) -> Model:
    """A model sent to a worker, on the GPU the task was given (if any)."""
    return model.to("cuda") if gpus > 0 and torch.cuda.is_available() else model


def render_task(model: Model, layer: str, channels: list[int], config: GalleryConfig, gpus: float) -> RenderedChunk:
    """One chunk's ``render_pictures`` on a worker, its tensors on the CPU for the trip back."""
    return render_pictures(place(model, gpus), layer, channels, config)


class DecodeRows:
    """Ray Data stage: candidate positions in the source (column ``data``) -> prepared inputs.

    An unreadable item keeps its row, with an all-zero input and the reason in ``error``, so
    that batches downstream still cover consecutive positions."""

    def __init__(self, source: ImageSource, prepare: Preparer) -> None:
        self.decoded = Decoded(source, prepare)
        self.blank = np.zeros((prepare.channels, *prepare.size), dtype=np.float32)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions, keys, inputs, errors = [], [], [], []
        for index in batch["data"].tolist():
            position, key, x, error = self.decoded[int(index)]
            positions.append(position)
            keys.append(key)
            inputs.append(x.numpy() if x is not None else self.blank)
            errors.append(error or "")
        return {"position": np.array(positions, dtype=np.int64), "key": np.array(keys, dtype=object),
                "input": np.stack(inputs), "error": np.array(errors, dtype=object)}


class ExamineBatch:
    """Ray Data stage on model actors: a batch of prepared inputs -> one row holding its pickled
    ``BatchSummary`` (top-k per channel of every layer: small whatever the batch size)."""

    def __init__(self, model: Model, layers: list[str], k: int, gpus: float) -> None:
        self.model, self.layers, self.k = place(model, gpus), layers, k

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions = batch["position"].tolist()
        errors = [str(e) for e in batch["error"]]
        keys = [str(k) for k in batch["key"]]
        readable = [i for i, e in enumerate(errors) if not e]
        items = [(positions[i], keys[i]) for i in readable]
        skipped = [(keys[i], errors[i]) for i, e in enumerate(errors) if e]
        activations = {}
        if readable:
            x = torch.from_numpy(np.ascontiguousarray(batch["input"][readable]))
            with torch.no_grad(), capture(self.model, self.layers) as cap:
                activations = cap(x.to(self.model.device, self.model.dtype))
        part = summarize(activations, items, self.k, skipped, max(positions) + 1)
        return {"summary": np.array([pickle.dumps(part)], dtype=object)}
