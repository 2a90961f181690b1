"""What runs inside Ray's worker processes: decoding source items, the models' pass over a batch
with every accumulator's summarizer, and rendering a chunk of units. Nothing here writes a file; results go back to the driver."""
from __future__ import annotations

import pickle

import numpy as np
import torch

from ..data.loading import Batch, Decoded, Preparer
from ..data.sources import ImageSource
from ..gallery.config import GalleryConfig
from ..gallery.unit_views import RenderedChunk, render_pictures
from ..models.model import Model
from ..stream import PassPlan


def place(model: Model, gpus: float) -> Model:
    """A model sent to a worker, on the GPU the task was given (if any)."""
    return model.to("cuda") if gpus > 0 and torch.cuda.is_available() else model


def render_task(model: Model, layer: str, channels: list[int], config: GalleryConfig, gpus: float) -> RenderedChunk:
    """One chunk's ``render_pictures`` on a worker, its tensors on the CPU for the trip back."""
    return render_pictures(place(model, gpus), layer, channels, config)


class DecodeRows:
    """Ray Data stage: candidate positions in the source (column ``data``) -> prepared inputs, one
    column per preparer (``input_0``, ...), each item decoded once.

    An unreadable item keeps its row, with all-zero inputs and the reason in ``error``, so that
    batches downstream still cover consecutive positions."""

    def __init__(self, source: ImageSource, preparers: list[Preparer]) -> None:
        self.decoded = Decoded(source, preparers)
        self.blanks = [np.zeros((p.channels, *p.size), dtype=np.float32) for p in preparers]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions, keys, inputs, errors = [], [], [[] for _ in self.blanks], []
        for index in batch["data"].tolist():
            position, key, x, error = self.decoded[int(index)]
            positions.append(position)
            keys.append(key)
            for i, blank in enumerate(self.blanks):
                inputs[i].append(x[i].numpy() if x is not None else blank)
            errors.append(error or "")
        return {"position": np.array(positions, dtype=np.int64), "key": np.array(keys, dtype=object),
                "error": np.array(errors, dtype=object), **{f"input_{i}": np.stack(x) for i, x in enumerate(inputs)}}


class ExamineBatch:
    """Ray Data stage on model actors: a batch of prepared inputs -> one row holding its pickled
    ``BatchParts`` (every accumulator's partial: small whatever the batch size)."""

    def __init__(self, plan: PassPlan, gpus: float) -> None:
        for reader in plan.readers.values():
            place(reader.model, gpus)  # in place: readers of one model share it
        self.plan = plan
        self.count = len(plan.preparers)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions = batch["position"].tolist()
        errors = [str(e) for e in batch["error"]]
        keys = [str(k) for k in batch["key"]]
        readable = [i for i, e in enumerate(errors) if not e]
        inputs = [torch.from_numpy(np.ascontiguousarray(batch[f"input_{i}"][readable])) for i in range(self.count)]
        parts = self.plan.summarize(Batch([(positions[i], keys[i]) for i in readable], inputs if readable else [],
                                          [(keys[i], errors[i]) for i, e in enumerate(errors) if e], max(positions) + 1))
        return {"parts": np.array([pickle.dumps(parts)], dtype=object)}
