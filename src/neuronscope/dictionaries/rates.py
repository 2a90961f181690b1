"""How often each feature of a dictionary fires, and which features a page shows first."""
from __future__ import annotations

import torch

from .config import DENSE
from .dictionary import Dictionary


def firing_rates(dictionary: Dictionary, vectors: torch.Tensor, batch: int = 8192) -> torch.Tensor:
    """(F,) the fraction of ``vectors`` on which each feature is active (a non-zero code)."""
    counts = torch.zeros(dictionary.features, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(vectors), batch):
            counts += (dictionary.encode(vectors[start:start + batch]) != 0).sum(0).double()
    return (counts / max(len(vectors), 1)).float()


def frequent_features(rates: torch.Tensor) -> list[int]:
    """Features that fire, most frequent first, without the dense ones (``DENSE``)."""
    return [f for f in rates.argsort(descending=True).tolist() if 0 < rates[f] <= DENSE]


def recorded_rates(dictionary: Dictionary) -> torch.Tensor | None:
    """(F,) the firing rates ``learn_dictionary`` recorded in the manifest, or None."""
    rates = dictionary.manifest.get("firing_rates")
    return torch.tensor(rates) if rates is not None else None
