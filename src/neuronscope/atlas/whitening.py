"""Whitening of activation space: ``S = (A^T A / N + ridge I)^-1`` from the collected activations
``A`` (N, C), the uncentered second-moment matrix as in Lucid's atlas, and the whitened cosine
``h^T S v / sqrt(h^T S h  v^T S v)``, which an invertible re-mixing of the channels (applied to
``A``, ``h`` and ``v``) leaves unchanged (up to the ridge)."""
from __future__ import annotations

import torch

from ..errors import NeuronscopeError

RIDGE = 1e-3
"""Ridge as a fraction of the mean diagonal of ``A^T A / N``: dead channels make it singular."""


def whitening(activations: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """(C, C) ``S = (A^T A / N + lambda I)^-1`` with ``lambda = ridge * mean diag(A^T A / N)``."""
    a = torch.as_tensor(activations).double()
    if a.dim() != 2 or a.shape[0] < 1:
        raise NeuronscopeError(f"whitening needs activations (N, C), got shape {tuple(a.shape)}")
    moment = a.T @ a / a.shape[0]
    lam = ridge * float(moment.diagonal().mean())
    eye = torch.eye(a.shape[1], dtype=torch.float64)
    return torch.linalg.inv(moment + lam * eye).float()


def whitened_cosine(h: torch.Tensor, v: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
    """(n, m) cosine between rows of ``h`` (n, C) and of ``v`` (m, C) in the metric ``S``
    (None: the identity, the plain cosine)."""
    h, v = torch.as_tensor(h).double(), torch.as_tensor(v).double()
    sv = v if s is None else v @ torch.as_tensor(s).double()  # S is symmetric: rows of v S = (S v)^T
    sh = h if s is None else h @ torch.as_tensor(s).double()
    dots = h @ sv.T
    norm_h = (h * sh).sum(1).clamp(min=1e-12).sqrt()
    norm_v = (v * sv).sum(1).clamp(min=1e-12).sqrt()
    return (dots / norm_h[:, None] / norm_v[None, :]).float()
