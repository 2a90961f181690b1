"""Size and transforms of a feature visualization where ``RenderConfig`` leaves them to the unit.

A unit that reads the whole picture (a class logit or probability, pooled features, any layer
without a spatial grid, or one neuron whose receptive field covers the input) is rendered at the
model's own input size, with Lucid's transforms plus zooms up to 1.3 (the ``zoom`` preset). Such
an image is judged whole, like a photo, and a viewer crops and resizes it: ``classify`` takes
the centre 87.5 % and scales it to the input size. On Lite0, 8 held-out classes made at 128 px
survived that view 3 times of 8 (Lite1: 0, Lite2: 1); made at 224 px with Lucid's transforms,
8 / 5 / 5; at 224 px with the zooms, 8 / 8 / 8. A channel of a spatial layer averages its
positions and shows a texture at any size, so it stays at ``DEFAULT_SIZE`` with Lucid's list
(three times fewer pixels: three times faster).
"""
from __future__ import annotations

from collections.abc import Iterable

from ..models.model import Model
from ..names import INPUT, LOGITS
from ..units import Unit

DEFAULT_SIZE = 128
"""Side for units of spatial layers: the model sees 140 px after the Lucid transforms."""
SPATIAL_TRANSFORMS, WHOLE_TRANSFORMS = "lucid", "zoom"
"""Transform presets for units of spatial layers and for units that read the whole image."""


def input_side(model: Model) -> int:
    """The model's input side (the longer one for a non-square input)."""
    return int(max(model.input_size))


def reads_whole_image(model: Model, layer: str) -> bool:
    """Whether every unit of ``layer`` depends on the whole input: the logits, or a layer without
    a spatial grid (pooled or flattened features)."""
    if layer == LOGITS:
        return True
    if layer == INPUT:
        return False
    return model.layer(layer).spatial is None


def unit_reads_whole_image(model: Model, unit: Unit) -> bool:
    """Whether ``unit`` depends on the whole input: its layer does (``reads_whole_image``), or it
    is one neuron whose receptive field covers the input."""
    if reads_whole_image(model, unit.layer):
        return True
    if unit.position is None:
        return False
    from ..examples.receptive import (
        receptive_field,  # a backward pass: measured for neurons only
    )

    extent, _ = receptive_field(model, unit.layer)
    return extent >= input_side(model)


def unit_size(model: Model, unit: Unit) -> int:
    """The side to render ``unit`` at: the model's input side for units that read the whole image,
    else ``DEFAULT_SIZE``."""
    return view_of(model, unit_reads_whole_image(model, unit))[0]


def view_of(model: Model, whole: bool) -> tuple[int, str]:
    """(side, transform preset) for units that read the whole image or not."""
    return (input_side(model), WHOLE_TRANSFORMS) if whole else (DEFAULT_SIZE, SPATIAL_TRANSFORMS)


def layers_read_whole_image(model: Model, layers: Iterable[str]) -> bool:
    """Whether an objective on ``layers`` reads the whole image (any of them does). Layers only: a
    free-form objective does not say which positions it reads, so the neuron rule of
    ``unit_reads_whole_image`` applies to units (``render_units``), not here."""
    return any(reads_whole_image(model, layer) for layer in layers)
