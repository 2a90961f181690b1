"""What identifies a model's weights: a version that changes on every in-place change, and a digest."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model import Model


def weights_version(model: Model) -> tuple[int, int, int]:
    """Changes whenever a parameter or buffer of the module is changed in place or replaced
    (cheap: reads tensor version counters, not values)."""
    tensors = [*model.module.parameters(), *model.module.buffers()]
    return (len(tensors), sum(t._version for t in tensors), hash(tuple(id(t) for t in tensors)))


def weights_digest(model: Model, length: int = 16) -> str:
    """SHA-256 (hex prefix) of every parameter and buffer, by name: two models with the same
    architecture and name but other weights get other digests. Cached until the weights change."""
    version = weights_version(model)
    cached = model.__dict__.get("_weights_digest")
    if cached is not None and cached[0] == version:
        return cached[1]
    digest = hashlib.sha256()
    for name, tensor in [*model.module.named_parameters(), *model.module.named_buffers()]:
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    value = digest.hexdigest()[:length]
    model.__dict__["_weights_digest"] = (version, value)
    return value

