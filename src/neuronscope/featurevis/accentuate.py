"""Feature accentuation: push a unit in a photo while staying close to the photo.

The render starts from the photo (``init``: the parameterization is first fitted to it) and
maximizes ``unit - weight * mean squared pixel difference to the photo``, with
``weight = closeness * max(|unit on the photo|, 1) / 0.01``, so the same ``closeness`` suits units
of any scale. With the default 10, Lite0's ``blocks.4.2:7`` on ``chelsea`` rises from 3.7 to 30
while the pixels move by 0.05 rms: the cat stays, its eyes and fur are redrawn in the unit's
terms. The answer to "what in this photo would make the unit fire more" (Hamblin et al., 2024).

    accent = accentuate(model, "chelsea", "blocks.4.2:7")
    accent.image, accent.photo_value, accent.value, accent.sheet()
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from PIL import Image

from ..capture import capture
from ..errors import NeuronscopeError
from ..images import SheetDisplay, contact_sheet
from ..models.model import Model
from ..units import Unit, parse_unit, unit_score
from . import objectives as obj
from .objectives.units import describe, unit_objective
from .render import RenderConfig, Result, render
from .sizing import input_side, unit_reads_whole_image

DEFAULT_CLOSENESS = 10.0
PIXEL_SCALE = 0.01
"""The mean squared pixel difference that costs ``closeness`` times the unit's response to the photo."""


@dataclass
class Accentuation(SheetDisplay):
    """A photo, the unit it was pushed for, and the accentuated image."""

    unit: Unit
    label: str
    photo: torch.Tensor
    """(C, H, W) the photo as the render saw it, in [0, 1]."""
    image: torch.Tensor
    """(C, H, W) the accentuated image."""
    photo_value: float
    value: float
    """The unit's response to the photo and to the accentuated image (no transforms)."""
    distance: float
    """Root mean squared pixel difference between the two, in [0, 1] units."""
    result: Result = field(repr=False)

    def sheet(self, title: str | None = None) -> Image.Image:
        captions = [f"photo: {self.photo_value:.2f}", f"accentuated: {self.value:.2f}"]
        title = title or f"accentuate {self.label} (rms change {self.distance:.3f})"
        return contact_sheet([self.photo, self.image], captions, columns=2, title=title)

    def preview(self) -> Image.Image:
        return self.sheet()

    @property
    def manifest(self) -> dict:
        return {**self.result.manifest, "kind": "feature accentuation", "unit": str(self.unit),
                "photo_value": self.photo_value, "value": self.value, "rms_distance": self.distance}


def accentuate(model: Model, image, unit: str | Unit, config: RenderConfig | None = None, *,
               closeness: float = DEFAULT_CLOSENESS) -> Accentuation:
    """Accentuate ``unit`` (an address like ``blocks.4.2:7`` or ``logits:tabby``) in ``image``
    (a path, bundled photo name, array or tensor) at ``config.size`` (None: the model's input size)."""
    if not closeness >= 0:
        raise NeuronscopeError(f"closeness must be zero or positive, got {closeness!r}")
    parsed = unit if isinstance(unit, Unit) else parse_unit(model, unit)
    config = config or RenderConfig()
    config = replace(config, size=config.size or input_side(model)).for_view(model, unit_reads_whole_image(model, parsed))
    photo = model.input(image, config.size, crop_fraction=1.0)
    photo_value = unit_value(model, parsed, photo)
    weight = closeness * max(abs(photo_value), 1.0) / PIXEL_SCALE
    # not rebuildable from its spec, which would carry the photo's pixels (3 MB of JSON at 224 px):
    # the manifest records the photo by name and the closeness instead
    objective = replace(unit_objective(parsed) - weight * obj.pixel_distance(photo[0]), spec=None)
    label = describe(model, parsed)
    result = render(model, objective, config, init=photo, labels=[label])
    accented = result.images[0]
    value = unit_value(model, parsed, accented[None].to(model.device, model.dtype))
    distance = float((accented - photo[0].cpu()).pow(2).mean().sqrt())
    result.manifest.update(closeness=closeness, weight=weight,
                           photo=image if isinstance(image, str) else "an image given in Python")
    return Accentuation(parsed, label, photo[0].cpu(), accented, photo_value, value, distance, result)


def unit_value(model: Model, unit: Unit, images: torch.Tensor) -> float:
    """The unit's score (as ``unit_score``) on a (1, C, H, W) image in [0, 1]."""
    with torch.no_grad(), capture(model, [unit.layer]) as cap:
        acts = cap(images)
    return float(unit_score(acts, unit, 0))
