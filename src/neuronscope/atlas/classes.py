"""Class activation atlas filters: which samples an atlas of one class keeps.

* winning: the samples whose largest attribution is to the class;
* magnitude: the ``top`` samples by attribution to the class, positive ones only, largest first;
* the atlas keeps the union of both (in sample order).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import NeuronscopeError


def winning(attributions: torch.Tensor, k: int) -> np.ndarray:
    """Indices ``{i : argmax_j attr_ij = k}``, ascending."""
    return np.flatnonzero(torch.as_tensor(attributions).argmax(1).numpy() == k)


def magnitude(attributions: torch.Tensor, k: int, top: int) -> np.ndarray:
    """The (at most) ``top`` indices with the largest attribution to ``k``, all positive, sorted
    by that attribution, largest first."""
    column = torch.as_tensor(attributions)[:, k].double()
    order = torch.argsort(column, descending=True, stable=True)[:top]
    return order[column[order] > 0].numpy()


def class_samples(attributions: torch.Tensor | None, k: int, top: int) -> np.ndarray:
    """The union of the winning and magnitude filters, ascending."""
    if attributions is None:
        raise NeuronscopeError("a class atlas needs the samples' attributions (collect them with attributions=True)")
    if not 0 <= k < attributions.shape[1]:
        raise NeuronscopeError(f"class {k} is out of range: the attributions cover classes 0..{attributions.shape[1] - 1}")
    return np.union1d(winning(attributions, k), magnitude(attributions, k, top))
