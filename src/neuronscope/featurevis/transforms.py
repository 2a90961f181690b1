"""Transformation robustness: pad, jitter, scale, rotate, jitter as ONE affine warp per step.

Lucid applies its transforms one op at a time (pad, random crop, resize, rotate, random crop).
Here the whole chain is one ``affine_grid`` + ``grid_sample`` per step: each batch item draws its
own crop offsets, scale and angle from its own seeded generator, so items are independent and
a batch equals the same items rendered one by one. The output canvas has a fixed size
``size + 2*pad - jitter - jitter_after`` (Lucid's size before its scale step); a scale s > 1
zooms the content in, s < 1 out, instead of changing the canvas size. Outside the image the
fill is a constant (mid-grey for Lucid's standard list).
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import NeuronscopeError


@dataclass(frozen=True)
class TransformConfig:
    """The random transformations applied at every step (defaults: Lucid's ``standard_transforms``)."""

    pad: int = 12
    """Pixels of constant ``fill`` added on every side."""
    jitter: int = 8
    """Random crop: the canvas shrinks by this many pixels, offset uniform in [0, jitter]."""
    scales: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))
    """Zoom factors, drawn uniformly from the list (repeat an entry to make it likelier)."""
    angles: tuple[float, ...] = tuple(float(a) for a in range(-10, 11)) + (0.0,) * 5
    """Rotation angles in degrees, drawn uniformly from the list."""
    jitter_after: int = 4
    """A second random crop after scaling and rotating."""
    fill: float = 0.5
    """Value outside the image."""

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (height, width) the model sees for an image of ``size``."""
        shrink = 2 * self.pad - self.jitter - self.jitter_after
        return (size[0] + shrink, size[1] + shrink)

    @property
    def is_identity(self) -> bool:
        return (self.pad, self.jitter, self.jitter_after) == (0, 0, 0) and set(self.scales) <= {1.0} and set(self.angles) <= {0.0}


LUCID = TransformConfig()
NONE = TransformConfig(pad=0, jitter=0, scales=(1.0,), angles=(0.0,), jitter_after=0)
ARTICLE = TransformConfig(pad=16, jitter=16, scales=(1.0, 0.975, 1.025, 0.95, 1.05),
                          angles=tuple(float(a) for a in range(-5, 6)), jitter_after=8)
"""The Feature Visualization article's list (its final crop of the padding is not applied)."""
ZOOM = TransformConfig(scales=tuple(0.9 + 0.05 * i for i in range(9)))
"""Lucid's list with zooms from 0.9 to 1.3: for pictures judged whole (classes), which a viewer
crops and resizes (a centre crop of 87.5 % is a zoom of 1.14)."""
PRESETS = {"lucid": LUCID, "article": ARTICLE, "zoom": ZOOM, "none": NONE}


def from_json(value: TransformConfig | str | dict) -> TransformConfig | str:
    """Transforms as a manifest stores them (a preset name, or a TransformConfig's fields with
    lists for tuples) back as the value a config takes."""
    if isinstance(value, dict):
        return TransformConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    return value


def preset(transforms: TransformConfig | str) -> TransformConfig:
    """A TransformConfig as it is, or the preset of that name (an unknown name lists the presets)."""
    if isinstance(transforms, TransformConfig):
        return transforms
    if transforms not in PRESETS:
        raise NeuronscopeError(f"unknown transform preset '{transforms}': choose one of {', '.join(PRESETS)}")
    return PRESETS[transforms]


@dataclass(frozen=True)
class Draw:
    """One item's random parameters for one step (offsets in pixels, relative to centred)."""

    shift1: tuple[float, float]
    scale: float
    angle: float
    shift2: tuple[float, float]


class RandomAffine:
    """Samples per-item transform parameters from per-item seeds and applies them in one warp.

    With ``shared=True`` one draw (from the first seed) is applied to every item of the batch,
    as caricatures need: the reference image and its caricatures must see the same crop, scale
    and angle so that their activations stay aligned position by position.
    """

    def __init__(self, config: TransformConfig, seeds: Sequence[int], shared: bool = False) -> None:
        if min(config.pad, config.jitter, config.jitter_after) < 0 or not config.scales or not config.angles:
            raise NeuronscopeError(f"invalid transform config {config}: sizes must be >= 0 and lists non-empty")
        self.config = config
        self.items = len(seeds)
        self.generators = [random.Random(int(seed)) for seed in (seeds[:1] if shared else seeds)]

    def draw(self) -> list[Draw]:
        """The next step's parameters, one per item (advances the generators)."""
        c = self.config
        draws = [
            Draw(_offset(g, c.jitter), g.choice(c.scales), g.choice(c.angles), _offset(g, c.jitter_after))
            for g in self.generators
        ]
        return draws * self.items if len(draws) == 1 and self.items > 1 else draws

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Warp (B, C, H, W) images with this step's draws onto the fixed output canvas."""
        if self.config.is_identity:
            return images
        return warp(images, self.draw(), self.config.output_size(tuple(images.shape[-2:])), self.config.fill)


def _offset(generator: random.Random, jitter: int) -> tuple[float, float]:
    """A crop offset in [0, jitter] per axis, measured from the centred crop (x, y)."""
    return (generator.randint(0, jitter) - jitter / 2, generator.randint(0, jitter) - jitter / 2)


def warp(images: torch.Tensor, draws: Sequence[Draw], out_size: tuple[int, int], fill: float) -> torch.Tensor:
    """Apply pad -> crop(shift1) -> scale -> rotate -> crop(shift2) as one bilinear resampling.

    For an output pixel at offset q from the canvas centre, the source pixel is
    ``shift1 + R(-angle) (q + shift2) / scale`` from the image centre.
    """
    batch, _, height, width = images.shape
    if len(draws) != batch:
        raise NeuronscopeError(f"{len(draws)} transform draws for a batch of {batch}")
    theta = torch.stack([_theta(d, (height, width), out_size) for d in draws]).to(images.device, images.dtype)
    grid = F.affine_grid(theta, [batch, images.shape[1], *out_size], align_corners=False)
    warped = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped + fill


def _theta(d: Draw, in_size: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """The 2x3 matrix mapping normalized output coordinates to normalized input coordinates."""
    in_h, in_w = in_size
    out_h, out_w = out_size
    radians = math.radians(d.angle)
    cos, sin = math.cos(radians) / d.scale, math.sin(radians) / d.scale
    # pixel-space map: p_in = A (q + shift2) + shift1, with A = R(-angle) / scale
    a = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float64)
    shift = a @ torch.tensor(d.shift2, dtype=torch.float64) + torch.tensor(d.shift1, dtype=torch.float64)
    # normalized coordinates: q = u * out/2, p_in = v * in/2
    to_in = torch.diag(torch.tensor([2.0 / in_w, 2.0 / in_h], dtype=torch.float64))
    from_out = torch.diag(torch.tensor([out_w / 2.0, out_h / 2.0], dtype=torch.float64))
    linear = to_in @ a @ from_out
    offset = to_in @ shift
    return torch.cat([linear, offset[:, None]], dim=1).float()
