"""Whether class attribution at a layer can be trusted: how well its sums agree with the logits.

    agreement(result.total, result.scores)        # one number: correlation over classes

Attribution to a hidden layer ranks classes correctly only where it decomposes the logits: its
sum over the layer should track each class's logit. One-step activation x gradient does so near
the head; integrated gradients also at mid layers (``benchmarks/agreement.py``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def agreement(totals: torch.Tensor, logits: torch.Tensor, classes: Sequence[int] | None = None) -> float:
    """Correlation, over ``classes`` (default all), between each class's attribution summed over a
    layer and its logit (or score): near 1 where the attribution decomposes the logits, low where
    the class ranking breaks down."""
    index = slice(None) if classes is None else list(classes)
    pair = torch.stack([totals[index].double(), logits[index].double()])
    return float(torch.corrcoef(pair)[0, 1])
