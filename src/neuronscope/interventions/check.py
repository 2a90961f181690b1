"""Does attribution point at what matters? Ablate a layer's k most attributed channels and k
random ones, and compare how much the class falls.

    rows = ablation_check(model, "chelsea", ["blocks.4.2", "blocks.5.3"])
    for row in rows: print(row.layer, row.k, row.top_drop, row.random_drop)

Channels are zero-ablated at every position: the change that attribution (``a * ds/da``, the
linear estimate of removing ``a``) predicts, so ``predicted`` sits beside the measured drop.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..attribution.hidden import attribute, label_of
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from ..units import parse_target
from .edits import Ablate, LayerEdit
from .intervene import edited_logits


@dataclass(frozen=True)
class AblationCheckConfig:
    """Attributes:
        ks: how many channels are ablated together.
        trials: random draws of k channels per k (the baseline).
        seed: seed of the random draws.
        batch: edited copies of the image per forward pass.
    """

    ks: tuple[int, ...] = (1, 4, 16)
    trials: int = 32
    seed: int = 0
    batch: int = 32

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1 or self.trials < 1 or self.batch < 1:
            raise NeuronscopeError(f"ks, trials and batch must be positive, got ks={self.ks}, trials={self.trials}, "
                                   f"batch={self.batch}")


@dataclass(frozen=True)
class AblationRow:
    """One layer and k: how far the target's logit falls when its k most attributed channels are
    zeroed (``top_drop``), against k random channels (``random_drop``: mean over the trials)."""

    layer: str
    k: int
    target: str
    top_drop: float
    random_drop: float
    random_drop_max: float
    top_probability_drop: float
    random_probability_drop: float
    predicted: float
    """The attribution's own estimate of ``top_drop``: the sum of the k channels' attributions."""

    @property
    def ratio(self) -> float:
        """``top_drop`` over ``random_drop`` (inf when random ablation does not lower the class)."""
        return self.top_drop / self.random_drop if self.random_drop > 0 else float("inf")

    def to_dict(self) -> dict:
        return {key: (round(value, 5) if isinstance(value, float) else value) for key, value in asdict(self).items()}


def ablation_check(model: Model, image, layers: Sequence[str], config: AblationCheckConfig = AblationCheckConfig(), *,
                   target: str | int | None = None) -> list[AblationRow]:
    """Per layer and k, the target's drop when ablating its k most attributed channels against k
    random channels. ``target``: a class (default: the image's top class)."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output: the check compares class drops")
    inputs = model.input(image)
    if target is None:
        target = int(edited_logits(model, inputs, [])[0].argmax())
    unit = parse_target(model, target)
    if unit.layer != LOGITS:
        raise NeuronscopeError(f"the check's target must be a class, got '{target}'")
    label = label_of(model, unit)
    generator = np.random.default_rng(config.seed)
    rows = []
    for layer in layers:
        info = model.spatial_layer(layer)
        attributed = attribute(model, [unit.channel], inputs, info.name).channel[0].double().cpu().numpy()
        ranked = np.argsort(-attributed)
        for k in config.ks:
            if k > info.channels:
                raise NeuronscopeError(f"k={k} is more than the {info.channels} channels of '{info.name}'")
            draws = [generator.choice(info.channels, size=k, replace=False) for _ in range(config.trials)]
            sets = [_zeroed(model, info.name, ranked[:k])] + [_zeroed(model, info.name, draw) for draw in draws]
            logits = edited_logits(model, inputs, sets, config.batch).double().cpu().numpy()
            drops = logits[0, unit.channel] - logits[1:, unit.channel]
            probabilities = torch.softmax(torch.as_tensor(logits), dim=1).numpy()[:, unit.channel]
            falls = probabilities[0] - probabilities[1:]
            rows.append(AblationRow(info.name, k, label, float(drops[0]), float(drops[1:].mean()), float(drops[1:].max()),
                                    float(falls[0]), float(falls[1:].mean()), float(attributed[ranked[:k]].sum())))
    return rows


def _zeroed(model: Model, layer: str, channels: np.ndarray) -> list[LayerEdit]:
    return list(Ablate([f"{layer}:{int(c)}" for c in channels]).resolve(model))

