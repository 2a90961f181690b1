"""Receptive fields, measured rather than derived from the architecture: the extent of the input
gradient of a layer's centre unit with every ReLU and max-pool linearized (so no unit is switched
off), and the smaller effective field that carries most of that gradient."""
from __future__ import annotations

import torch

from ..capture import capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..overrides import frozen_weights, linearized


def receptive_field(model: Model, layer: str, size: int | None = None) -> tuple[int, int]:
    """(size, stride) in input pixels of the units of a spatial layer, at input ``size``
    (default the model's). Measured, not derived from the architecture: the extent of the
    non-zero gradient of a centre unit with respect to the input, with ReLUs and max-pools
    linearized so no unit is switched off; if that extent fills the input, it is measured again
    on an input twice as large (and is at least that large if it fills that too)."""
    input_size = model.input_size if size is None else (int(size), int(size))
    field = field_geometry(model, layer, input_size)
    if field is None:
        return (max(input_size), max(input_size))
    extent, stride, _ = field
    return (max(extent), round(max(stride)))


def effective_extent(model: Model, layer: str, mass: float = 0.9) -> tuple[int, int] | None:
    """(h, w) in input pixels of the part of a unit's receptive field that carries ``mass`` of its
    input gradient (linearized network, centre unit), trimming equal tails on each axis. Deep
    units' full fields span the whole image; this smaller effective field (Luo et al., 2016) is
    what dataset-example crops show. None for layers without spatial extent."""
    if model.layer(layer).spatial is None:
        return None
    if not 0 < mass <= 1:
        raise NeuronscopeError(f"mass must be in (0, 1], got {mass}")
    gradient = _centre_gradient(model, layer, model.input_size)[0]
    extent = []
    for profile in (gradient.sum(1), gradient.sum(0)):
        cumulative = profile.cumsum(0) / profile.sum().clamp(min=1e-30)
        low = torch.tensor((1 - mass) / 2, dtype=cumulative.dtype)
        high = torch.tensor(1 - (1 - mass) / 2 - 1e-6, dtype=cumulative.dtype)
        start = int(torch.searchsorted(cumulative, low, right=True))  # first pixel past the lower tail
        stop = min(int(torch.searchsorted(cumulative, high)), len(cumulative) - 1)
        extent.append(max(1, stop - start + 1))
    return (extent[0], extent[1])


CROP_MASS = 0.8
"""Example crops show the effective receptive field: the part carrying this much of the input gradient."""
MIN_CROP = 32
"""Least crop side in input pixels, so that shallow units' crops keep some context."""


def crop_extent(model: Model, layer: str, mass: float = CROP_MASS, least: int = MIN_CROP) -> tuple[int, int] | None:
    """(h, w) in input pixels of a layer's dataset-example crops: its ``effective_extent`` at
    ``mass``, at least ``least`` pixels a side; None for a layer without spatial extent."""
    extent = effective_extent(model, layer, mass)
    return None if extent is None else (max(least, extent[0]), max(least, extent[1]))


def field_geometry(model: Model, layer: str, input_size: tuple[int, int]):
    """(extent (h, w), stride (h, w), offset (h, w)) of a spatial layer's units in input pixels,
    where the field of unit (y, x) is centred on ``offset + (y, x) * stride``; None if not spatial."""
    if model.layer(layer).spatial is None:
        return None
    *field, clipped = _centre_field(model, layer, input_size)
    if clipped and not model.fixed_input_size:  # (a fixed-size model sees every input resized to its size)
        try:  # measure on a larger input, which some models refuse
            *field, _ = _centre_field(model, layer, (2 * input_size[0], 2 * input_size[1]))
        except RuntimeError:
            pass
    return tuple(field)


def _centre_field(model: Model, layer: str, size: tuple[int, int]):
    """The extent of the non-zero input gradient of the centre unit at input ``size``, as
    (extent, stride, offset, whether the extent reaches the border of the input)."""
    gradient, grid = _centre_gradient(model, layer, size)
    cy, cx = grid[0] // 2, grid[1] // 2
    stride = (size[0] / grid[0], size[1] / grid[1])
    mask = gradient > 0
    rows, cols = torch.nonzero(mask.any(1)).flatten(), torch.nonzero(mask.any(0)).flatten()
    if len(rows) == 0:  # the unit does not depend on the input: treat it as seeing everything
        y0, y1, x0, x1 = 0, size[0] - 1, 0, size[1] - 1
    else:
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    extent = (y1 - y0 + 1, x1 - x0 + 1)
    offset = ((y0 + y1) / 2 - cy * stride[0], (x0 + x1) / 2 - cx * stride[1])
    clipped = min(y0, x0) == 0 or y1 == size[0] - 1 or x1 == size[1] - 1
    return extent, stride, offset, clipped


def _centre_gradient(model: Model, layer: str, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """|d (centre unit, summed over channels) / d input| summed over colours, (H, W), on a constant
    grey input with ReLUs and max-pools linearized; and the layer's grid at that size."""
    x = torch.full((1, model.input_channels, *size), 0.5, device=model.device, dtype=model.dtype)
    x.requires_grad_(True)
    with linearized(model.module), frozen_weights(model.module), capture(model, [layer]) as cap:
        activation = cap(x)[layer]
        grid = tuple(activation.shape[2:])
        (gradient,) = torch.autograd.grad(activation[0, :, grid[0] // 2, grid[1] // 2].sum(), x)
    return gradient[0].abs().sum(0), grid


def field_span(index: int, extent: int, stride: float, offset: float, limit: int) -> tuple[int, int]:
    """[start, stop) along one axis of a field of ``extent`` centred on ``offset + index * stride``,
    clipped to [0, limit)."""
    start = round(offset + index * stride - (extent - 1) / 2)
    return max(0, start), min(limit, start + extent)
