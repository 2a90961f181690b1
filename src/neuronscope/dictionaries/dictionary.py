"""`Dictionary`: features of one layer as directions in its activation space.

A feature's *pre-activation* is linear in the layer's activation vector ``a``:

    TopK:  pre = encoder @ ((a - mean) / scale - decoder_bias) + encoder_bias
    NMF:   pre = pinv(decoder) applied to a     (the least-squares code, before clipping)

and its *code* is what reconstructs ``a``: the k largest positive pre-activations (TopK) or the
non-negative least-squares code (NMF). A TopK dictionary with ``refit`` keeps the encoder's choice
of the k features but refits their values by least squares to ``a`` (``refit_codes``): the
encoder picks, the decoder's atoms fit. ``reconstruct(a) = decode(encode(a))``. Every function
takes vectors (N, C) or a layer's output (B, C, H, W).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import non_negative_factorization

from ..errors import NeuronscopeError
from ..manifest import write_json, write_npz


@dataclass(frozen=True, eq=False)
class Dictionary:
    """A learned dictionary of ``features`` directions at ``layer`` (see the module)."""

    layer: str
    kind: str
    """``topk`` or ``nmf``."""
    k: int | None
    """Active features per vector (TopK); None for NMF."""
    mean: torch.Tensor
    """(C,) the training vectors' mean (zeros for NMF)."""
    scale: float
    """The training vectors' RMS distance to the mean (1 for NMF); inputs are divided by it."""
    encoder: torch.Tensor
    """(F, C) rows that give the pre-activations."""
    encoder_bias: torch.Tensor
    """(F,)"""
    decoder: torch.Tensor
    """(F, C) the features' directions (unit rows for TopK), in the scaled space."""
    decoder_bias: torch.Tensor
    """(C,)"""
    refit: bool = False
    """TopK: the codes' values are refitted by least squares on the k features the encoder picks
    (``refit_codes``); False: the encoder's values are the codes."""
    manifest: dict[str, Any] = field(default_factory=dict)
    """How it was made: model, layer, source, settings, versions, fingerprint, the quality report."""

    @property
    def features(self) -> int:
        return int(self.decoder.shape[0])

    @property
    def channels(self) -> int:
        return int(self.decoder.shape[1])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest.get("fingerprint", ""))

    def directions(self) -> torch.Tensor:
        """(F, C) each feature's direction in the layer's own units (decoder rows, unit length)."""
        rows = self.decoder * self.scale
        return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(F, C) weights and (F,) offsets with ``pre_activation(a) = a @ weights.T + offsets``: each
        feature as a direction of the layer's own units (what a render maximizes)."""
        if self.kind == "nmf":
            return self.encoder, self.encoder_bias
        weights = self.encoder / self.scale
        offsets = self.encoder_bias - self.encoder @ (self.mean / self.scale + self.decoder_bias)
        return weights, offsets

    def pre_activation(self, activations: torch.Tensor) -> torch.Tensor:
        """Every feature's pre-activation, (N, F) or (B, F, H, W); differentiable."""
        return _per_vector(activations, self._pre)

    def encode(self, activations: torch.Tensor) -> torch.Tensor:
        """The sparse codes, (N, F) or (B, F, H, W)."""
        return _per_vector(activations, self._codes)

    def codes_of(self, pre: torch.Tensor) -> torch.Tensor:
        """The encoder's codes of given pre-activations, (N, F) or (B, F, H, W): the top k where
        positive (TopK, never refitted: no activation vector to refit to); the positive part (NMF,
        whose ``encode`` solves a non-negative least squares instead)."""
        if self.kind == "nmf":
            return pre.clamp_min(0)
        return _per_vector(pre, lambda rows: topk_codes(rows, self.k))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Activations from codes, (N, C) or (B, C, H, W)."""
        return _per_vector(codes, self._decode)

    def reconstruct(self, activations: torch.Tensor) -> torch.Tensor:
        """``decode(encode(a))``, in the shape of ``activations``."""
        return _per_vector(activations, lambda rows: self._decode(self._codes(rows)))

    def _pre(self, rows: torch.Tensor) -> torch.Tensor:
        encoder, bias = self.encoder.to(rows), self.encoder_bias.to(rows)
        if self.kind == "nmf":
            return rows @ encoder.T + bias
        return self._centred(rows) @ encoder.T + bias

    def _centred(self, rows: torch.Tensor) -> torch.Tensor:
        """TopK: vectors in the scaled space the decoder's atoms live in, less the decoder's offset."""
        return (rows - self.mean.to(rows)) / self.scale - self.decoder_bias.to(rows)

    def _codes(self, rows: torch.Tensor) -> torch.Tensor:
        if self.kind == "nmf":
            values = rows.detach().double().clamp_min(0).cpu().numpy()
            codes, _, _ = non_negative_factorization(values, H=self.decoder.double().numpy(), update_H=False,
                                                     n_components=self.features, init="custom", max_iter=400)
            return torch.from_numpy(codes).to(rows)
        if not self.refit:
            return topk_codes(self._pre(rows), self.k)
        return refit_codes(self._pre(rows), self.k, self._centred(rows), self.decoder.to(rows))

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        rows = codes @ self.decoder.to(codes) + self.decoder_bias.to(codes)
        return rows if self.kind == "nmf" else rows * self.scale + self.mean.to(codes)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.npz with the tensors) and the manifest beside it (``path`` + .json), atomically."""
        path = Path(path)
        arrays = {name: getattr(self, name).numpy() for name in TENSORS}
        write_json(path.with_name(path.name + ".json"), self.manifest)
        return write_npz(path, {**arrays, "layer": self.layer, "kind": self.kind,
                                "k": -1 if self.k is None else self.k, "scale": self.scale, "refit": self.refit})

    @classmethod
    def load(cls, path: str | Path) -> Dictionary:
        """A dictionary written by ``save``."""
        path = Path(path)
        if not path.exists():
            raise NeuronscopeError(f"no dictionary at {path}")
        with np.load(path, allow_pickle=False) as data:
            tensors = {name: torch.from_numpy(np.array(data[name])) for name in TENSORS}
            k = int(data["k"])
            layer, kind, scale = str(data["layer"]), str(data["kind"]), float(data["scale"])
            refit = bool(data["refit"]) if "refit" in data.files else False  # written before refitting existed
        side = path.with_name(path.name + ".json")
        manifest = {**(json.loads(side.read_text()) if side.exists() else {}), "file": str(path.resolve())}
        return cls(layer, kind, None if k < 0 else k, scale=scale, refit=refit, manifest=manifest, **tensors)


TENSORS = ("mean", "encoder", "encoder_bias", "decoder", "decoder_bias")


def topk_codes(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep each row's ``k`` largest pre-activations where they are positive; zero elsewhere."""
    values, index = pre.topk(min(k, pre.shape[-1]), dim=-1)
    return torch.zeros_like(pre).scatter(-1, index, values.clamp_min(0))


def refit_codes(pre: torch.Tensor, k: int, target: torch.Tensor, atoms: torch.Tensor, *, ridge: float = 1e-3,
                rounds: int = 2, chunk: int = 4096) -> torch.Tensor:
    """Codes (N, F) on the features that ``topk_codes(pre, k)`` picks, with values refitted to
    ``target`` (N, C) by least squares on those features' ``atoms`` (F, C rows), a ``ridge`` for
    nearly parallel atoms; features whose value comes out negative are dropped and the rest fitted
    again (``rounds`` fits in all), so the codes stay non-negative. ``chunk`` rows at a time."""
    pieces = []
    for start in range(0, len(pre), chunk):
        values, index = pre[start:start + chunk].topk(min(k, pre.shape[-1]), dim=-1)
        keep = values > 0
        chosen = atoms[index]  # (n, k, C)
        gram = chosen @ chosen.transpose(1, 2)
        right = (chosen @ target[start:start + chunk].unsqueeze(-1)).squeeze(-1)
        identity = torch.eye(index.shape[1], dtype=pre.dtype, device=pre.device)
        for _ in range(rounds):
            both = (keep.unsqueeze(1) & keep.unsqueeze(2)).to(pre.dtype)
            system = gram * both + identity * (ridge + (~keep).to(pre.dtype).unsqueeze(1))
            values = torch.linalg.solve(system, (right * keep).unsqueeze(-1)).squeeze(-1) * keep
            keep = keep & (values > 0)
        pieces.append(torch.zeros_like(pre[start:start + chunk]).scatter(-1, index, values * keep))
    return torch.cat(pieces) if pieces else torch.zeros_like(pre)


def _per_vector(values: torch.Tensor, function) -> torch.Tensor:
    """Apply a (N, C) -> (N, D) function to vectors or to every position of (B, C, H, W)."""
    if values.dim() == 2:
        return function(values)
    if values.dim() != 4:
        raise NeuronscopeError(f"expected vectors (N, C) or a layer's output (B, C, H, W), got shape {tuple(values.shape)}")
    batch, _, height, width = values.shape
    rows = function(values.permute(0, 2, 3, 1).reshape(batch * height * width, -1))
    return rows.reshape(batch, height, width, -1).permute(0, 3, 1, 2)

