"""Which attribution method to trust at a layer: the one whose sums agree best with the logits.

    found = method_agreements(model, image, "blocks.4.2")   # {method: agreement}
    best_method(found)                                      # "integrated gradients" at mid layers of Lite0
"""
from __future__ import annotations

import numpy as np

from ..errors import NeuronscopeError
from ..models.model import Model
from ..predict import classify
from .hidden import attribute, logit_agreement
from .integrated import class_support

GRADIENT, INTEGRATED = "activation x gradient", "integrated gradients"
"""The two methods of class attribution that ``method_agreements`` compares (as gallery manifests name them)."""
AGREEMENT_STEPS = 16
"""Integrated-gradients path points for measuring agreement: enough to rank classes (the sums are
then within a few percent of the logits' changes; completeness to 1e-3 needs 1000-2000 at blocks.4)."""
TRUSTED = 0.8
"""Least agreement (over 50 classes) at which a gallery shows the classes a layer's units support."""


def method_agreements(model: Model, image, layer: str, steps: int = AGREEMENT_STEPS) -> dict[str, float | None]:
    """The ``agreement`` of each method at ``layer`` on ``image``, over the image's top 10 classes
    and 40 evenly spaced others: one-step attribution (``GRADIENT``) and integrated gradients
    (``INTEGRATED``; None for a model without forward-mode derivatives)."""
    top = [prediction.index for prediction in classify(model, [image], top=10)[0]]
    spread = [int(i) for i in np.linspace(0, model.num_classes - 1, 40).round()]
    targets = list(dict.fromkeys(top + spread))
    found: dict[str, float | None] = {GRADIENT: round(logit_agreement(attribute(model, targets, image, layer)), 4)}
    try:
        found[INTEGRATED] = round(class_support(model, image, layer, steps=steps).agreement(targets), 4)
    except NeuronscopeError:  # a model without forward-mode derivatives: one-step attribution only
        found[INTEGRATED] = None
    return found


def best_method(found: dict[str, float | None]) -> str:
    """The method with the higher agreement (one-step attribution on a tie: it is cheaper)."""
    integrated = found.get(INTEGRATED)
    return INTEGRATED if integrated is not None and integrated > found[GRADIENT] else GRADIENT
