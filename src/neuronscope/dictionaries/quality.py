"""How good a dictionary is, on vectors and images it was not trained on.

- explained variance: ``1 - |a - reconstruct(a)|^2 / |a - mean|^2`` over the held-out vectors;
- L0: active features per held-out vector, on average;
- dead: the fraction of features never active on the held-out vectors;
- stability: a second dictionary from another seed, atoms matched one-to-one (Hungarian method on
  the decoder rows' cosines), the mean cosine of the matched pairs;
- spliced: the model with the layer replaced by its reconstruction at every position, on the
  held-out images: top-1 agreement with the original model and mean KL(original || spliced).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..capture import capture
from ..data.sources import ImageSource
from ..models.model import Model
from ..names import LOGITS
from ..stream import BatchView, PassConfig, Reader, stream
from .dictionary import Dictionary


@dataclass(frozen=True)
class QualityReport:
    """The figures of the module docstring, for one dictionary."""

    explained_variance: float
    l0: float
    dead_fraction: float
    stability: float | None
    top1_agreement: float | None
    kl: float | None
    heldout_vectors: int
    heldout_images: int

    def to_dict(self) -> dict:
        return asdict(self)


def vector_quality(dictionary: Dictionary, vectors: torch.Tensor, batch: int = 8192) -> tuple[float, float, float]:
    """(explained variance, L0, dead fraction) of ``dictionary`` on ``vectors`` (N, C)."""
    error = total = active = 0.0
    fired = torch.zeros(dictionary.features, dtype=torch.bool)
    mean = vectors.double().mean(0)
    with torch.no_grad():
        for start in range(0, len(vectors), batch):
            rows = vectors[start:start + batch]
            codes = dictionary.encode(rows)
            reconstruction = dictionary.decode(codes)
            error += float((rows.double() - reconstruction.double()).pow(2).sum())
            total += float((rows.double() - mean).pow(2).sum())
            nonzero = codes != 0
            active += float(nonzero.sum())
            fired |= nonzero.any(0)
    return 1 - error / max(total, 1e-12), active / max(len(vectors), 1), 1 - float(fired.float().mean())


def stability(first: Dictionary, second: Dictionary) -> float:
    """Mean cosine of the decoder atoms of two dictionaries, matched one-to-one (Hungarian)."""
    a = first.directions().double().numpy()
    b = second.directions().double().numpy()
    cosine = a @ b.T
    rows, cols = linear_sum_assignment(-cosine)
    return float(cosine[rows, cols].mean())


@dataclass(frozen=True)
class SplicedSummary:
    """A batch -> (top-1 agreements, KL per image) of the model with ``layer`` reconstructed."""

    reader: str
    dictionary: Dictionary

    def __call__(self, view: BatchView) -> tuple[int, float, int]:
        model, x = view.models[self.reader], view.inputs[self.reader]
        with torch.no_grad():
            with capture(model, [LOGITS]) as cap:
                original = cap(x)[LOGITS].double()
            with capture(model, [self.dictionary.layer, LOGITS], replace={self.dictionary.layer: self.dictionary.reconstruct}) as cap:
                spliced = cap(x)[LOGITS].double()
        agree = int((original.argmax(1) == spliced.argmax(1)).sum())
        p = original.log_softmax(1)
        kl = float((p.exp() * (p - spliced.log_softmax(1))).sum(1).sum())
        return agree, kl, len(x)


class SplicedAgreement:
    """An accumulator: top-1 agreement and mean KL of the spliced model over a source."""

    def __init__(self, model: Model, dictionary: Dictionary) -> None:
        reader = Reader.of(model)
        self.reads = {reader: ()}
        self.name = f"spliced {reader.key} {dictionary.layer} {id(dictionary)}"
        self.summarizer = SplicedSummary(reader.key, dictionary)
        self.agree = self.images = 0
        self.kl = 0.0

    def merge(self, partial: tuple[int, float, int], items) -> None:
        self.agree += partial[0]
        self.kl += partial[1]
        self.images += partial[2]

    def state(self) -> dict[str, np.ndarray]:
        return {"totals": np.array([self.agree, self.kl, self.images], dtype=np.float64)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.agree, self.kl, self.images = int(arrays["totals"][0]), float(arrays["totals"][1]), int(arrays["totals"][2])


def spliced_agreement(model: Model, dictionary: Dictionary, source: ImageSource, *,
                      batch: int = 16, progress: bool = False) -> tuple[float, float]:
    """(top-1 agreement, mean KL) of ``model`` with ``dictionary.layer`` replaced by its
    reconstruction, against the model itself, over ``source``."""
    accumulator = SplicedAgreement(model, dictionary)
    stream(source, [accumulator], PassConfig(batch=batch, workers=0, progress=progress),
           what=f"spliced {dictionary.layer}")
    return accumulator.agree / max(accumulator.images, 1), accumulator.kl / max(accumulator.images, 1)
