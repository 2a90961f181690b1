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
    crop: tuple[float, float] | None = None
    """Crop mode (replaces pad, jitter, scales and angles): each step a square crop whose side is
    this fraction of the image's (uniform between the two), resized to ``output`` pixels."""
    centre_std: float = 0.15
    """Crop mode: the crop's centre is drawn around the image's middle with this standard
    deviation, as a fraction of the side (MaCo's 0.15)."""
    output: int | None = None
    """Crop mode: the side of the crops the model sees; None: the model's input side (set by the render)."""
    noise: float = 0.0
    """After the warp, add Gaussian noise of this standard deviation and uniform noise of this width
    (MaCo's robustness to noise; 0: none)."""

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (height, width) the model sees for an image of ``size``."""
        if self.crop is not None:
            return (self.output, self.output) if self.output is not None else tuple(size)
        shrink = 2 * self.pad - self.jitter - self.jitter_after
        return (size[0] + shrink, size[1] + shrink)

    @property
    def is_identity(self) -> bool:
        if self.crop is not None or self.noise > 0:
            return False
        return (self.pad, self.jitter, self.jitter_after) == (0, 0, 0) and set(self.scales) <= {1.0} and set(self.angles) <= {0.0}


LUCID = TransformConfig()
NONE = TransformConfig(pad=0, jitter=0, scales=(1.0,), angles=(0.0,), jitter_after=0)
ARTICLE = TransformConfig(pad=16, jitter=16, scales=(1.0, 0.975, 1.025, 0.95, 1.05),
                          angles=tuple(float(a) for a in range(-5, 6)), jitter_after=8)
"""The Feature Visualization article's list (its final crop of the padding is not applied)."""
ZOOM = TransformConfig(scales=tuple(0.9 + 0.05 * i for i in range(9)))
"""Lucid's list with zooms from 0.9 to 1.3: for pictures judged whole (classes), which a viewer
crops and resizes (a centre crop of 87.5 % is a zoom of 1.14)."""
MACO = TransformConfig(crop=(0.20, 0.25), centre_std=0.15, noise=0.05)
"""MaCo's authors' recipe (Fel et al. 2023, their ``optimization_step``): crops of 20-25 % of the
side of a large image, centres drawn around the middle (std 0.15), resized to the model's input,
Gaussian and uniform noise of 0.05."""
PRESETS = {"lucid": LUCID, "article": ARTICLE, "zoom": ZOOM, "maco": MACO, "none": NONE}


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
        check(config)
        self.config = config
        self.items = len(seeds)
        chosen = seeds[:1] if shared else seeds
        self.generators = [random.Random(int(seed)) for seed in chosen]
        self.noise_generators = [torch.Generator().manual_seed(int(seed)) for seed in chosen]

    def draw(self, size: tuple[int, int] = (0, 0)) -> list[Draw]:
        """The next step's parameters, one per item (advances the generators); ``size`` is the
        image's (height, width), which crop mode needs."""
        c = self.config
        if c.crop is not None:
            draws = [_crop_draw(g, c, size) for g in self.generators]
        else:
            draws = [Draw(_offset(g, c.jitter), g.choice(c.scales), g.choice(c.angles), _offset(g, c.jitter_after))
                     for g in self.generators]
        return draws * self.items if len(draws) == 1 and self.items > 1 else draws

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Warp (B, C, H, W) images with this step's draws onto the fixed output canvas."""
        if self.config.is_identity:
            return images
        size = tuple(images.shape[-2:])
        apply = crop_warp if self.config.crop is not None else warp
        warped = apply(images, self.draw(size), self.config.output_size(size), self.config.fill)
        return warped + self._noise(warped) if self.config.noise > 0 else warped

    def _noise(self, images: torch.Tensor) -> torch.Tensor:
        """Per item: Gaussian noise of std ``noise`` plus uniform noise of width ``noise``, from the
        item's own generator (a batch equals its items one by one)."""
        shape, level = images.shape[1:], self.config.noise
        noise = [torch.randn(shape, generator=g) * level + (torch.rand(shape, generator=g) - 0.5) * level
                 for g in self.noise_generators]
        noise = noise * self.items if len(noise) == 1 and self.items > 1 else noise
        return torch.stack(noise).to(images)


def check(config: TransformConfig) -> None:
    """A NeuronscopeError naming what is wrong with ``config``, if anything."""
    if min(config.pad, config.jitter, config.jitter_after) < 0 or not config.scales or not config.angles:
        raise NeuronscopeError(f"invalid transform config {config}: sizes must be >= 0 and lists non-empty")
    if config.crop is not None and not (len(config.crop) == 2 and 0 < config.crop[0] <= config.crop[1] <= 1):
        raise NeuronscopeError(f"transform crop must be two fractions 0 < low <= high <= 1, got {config.crop!r}")
    if config.output is not None and config.output < 1 or config.noise < 0 or config.centre_std < 0:
        raise NeuronscopeError(f"invalid transform config {config}: output must be positive, noise and centre_std >= 0")


def _crop_draw(generator: random.Random, config: TransformConfig, size: tuple[int, int]) -> Draw:
    """A crop of ``config.crop`` of the side, centred around the middle, resized to the output."""
    side = min(size) * generator.uniform(*config.crop)
    out = config.output_size(size)[0]
    limit = [(extent - side) / 2 for extent in (size[1], size[0])]  # keep the crop inside the image
    centre = [max(-m, min(m, generator.gauss(0.0, config.centre_std) * extent))
              for m, extent in zip(limit, (size[1], size[0]))]
    return Draw((centre[0], centre[1]), out / side, 0.0, (0.0, 0.0))


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


def crop_warp(images: torch.Tensor, draws: Sequence[Draw], out_size: tuple[int, int], fill: float) -> torch.Tensor:
    """``warp`` for axis-aligned crops (no angle, no second shift), reading only the part of each
    image its crop covers: on a large image (MaCo's 1280 px) the full-size warp and its backward
    cost far more than the model. The same pixels as ``warp`` to float rounding."""
    height, width = images.shape[-2:]
    pieces = []
    for image, d in zip(images, draws):
        if d.angle != 0 or d.shift2 != (0.0, 0.0):
            raise NeuronscopeError("crop_warp takes axis-aligned crops only; use warp")
        (x0, x1), (y0, y1) = (_span(extent / 2 + shift, out / d.scale, extent)
                              for extent, shift, out in ((width, d.shift1[0], out_size[1]), (height, d.shift1[1], out_size[0])))
        piece = image[None, :, y0:y1, x0:x1]
        moved = Draw((d.shift1[0] + width / 2 - (x0 + x1) / 2, d.shift1[1] + height / 2 - (y0 + y1) / 2), d.scale,
                     0.0, (0.0, 0.0))
        pieces.append(warp(piece, [moved], out_size, fill))
    return torch.cat(pieces)


def _span(centre: float, side: float, limit: int) -> tuple[int, int]:
    """The pixels [start, stop) a crop of ``side`` around ``centre`` samples, with the neighbours
    bilinear interpolation reads, within [0, limit)."""
    return max(0, math.floor(centre - side / 2) - 2), min(limit, math.ceil(centre + side / 2) + 2)


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
