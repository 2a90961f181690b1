"""How much of a feature visualization survives being viewed differently: random crops and rescales.

A picture that drives its unit only when seen exactly as it was optimized (same pixels, same
scale) explains little. ``crop_robustness`` shows each image again under ``trials`` random views
(a crop of 60-100 % of the side at a random place, resized back to the image's size) and reports
the unit's mean score over those views as a fraction of its score on the image as it is.
"""
from __future__ import annotations

import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..capture import capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..units import Unit, parse_unit, unit_score

TRIALS = 8
"""Random views per image."""
SMALLEST_CROP = 0.6
"""The smallest crop, as a fraction of the image side."""


def random_views(image: torch.Tensor, trials: int, seed: int, smallest: float = SMALLEST_CROP) -> torch.Tensor:
    """(trials, C, H, W): random square crops of ``image`` (C, H, W) resized back to (H, W)."""
    _, height, width = image.shape
    generator = random.Random(seed)
    views = []
    for _ in range(trials):
        side = generator.uniform(smallest, 1.0)
        h, w = max(1, round(height * side)), max(1, round(width * side))
        top, left = generator.randint(0, height - h), generator.randint(0, width - w)
        crop = image[:, top : top + h, left : left + w][None]
        views.append(F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False, antialias=True)[0])
    return torch.stack(views)


def crop_robustness(model: Model, images: Sequence[torch.Tensor] | torch.Tensor, units: Sequence[str | Unit], *,
                    trials: int = TRIALS, seed: int = 0) -> list[float]:
    """For each image (C, H, W in [0, 1]) and the unit it was made for, the unit's mean score
    over ``trials`` random crops and rescales divided by its score on the image itself
    (1: unchanged; near 0 or negative: the picture works only as it was made). Scores as
    ``unit_score``: a channel's spatial mean, a neuron's value, a class logit."""
    if len(images) != len(units):
        raise NeuronscopeError(f"{len(images)} images for {len(units)} units: give one unit per image")
    if trials < 1:
        raise NeuronscopeError(f"trials must be at least 1, got {trials}")
    parsed = [u if isinstance(u, Unit) else parse_unit(model, u) for u in units]
    ratios = []
    for i, (image, unit) in enumerate(zip(images, parsed)):
        batch = torch.cat([image[None], random_views(image, trials, seed + i)]).to(model.device, model.dtype)
        with torch.no_grad(), capture(model, [unit.layer]) as cap:
            acts = cap(batch)
        scores = torch.stack([unit_score(acts, unit, k) for k in range(len(batch))]).double()
        ratios.append(float(scores[1:].mean() / scores[0]) if scores[0].abs() > 1e-12 else float("nan"))
    return ratios
