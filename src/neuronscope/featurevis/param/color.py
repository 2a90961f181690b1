"""Colour decorrelation and the map from unconstrained values to valid RGB in [0, 1].

Lucid's fixed 3x3 matrix is the square root of the ImageNet colour correlation (from an SVD),
normalised by its largest column norm: column 1 is luminance, 2 red-blue, 3 green-magenta.
"""
from __future__ import annotations

import torch

IMAGENET_COLOR_CORRELATION = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_MATRIX = IMAGENET_COLOR_CORRELATION / IMAGENET_COLOR_CORRELATION.norm(dim=0).max()
COLOR_MEAN = (0.48, 0.46, 0.41)
SQUASHES = ("sigmoid", "clip")


def decorrelated_to_rgb(u: torch.Tensor, matrix: torch.Tensor = COLOR_MATRIX) -> torch.Tensor:
    """Map (B, 3, H, W) values in the decorrelated colour basis to linear RGB: rgb_p = M u_p."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(u.device, u.dtype), u)


def to_valid_rgb(u: torch.Tensor, decorrelate: bool = True, squash: str = "sigmoid") -> torch.Tensor:
    """Unconstrained (B, C, H, W) values to images in [0, 1].

    Colour decorrelation applies to 3-channel images only. ``squash`` is ``sigmoid`` (never
    saturates; no mean offset) or ``clip`` (adds Lucid's colour mean, clips to [0, 1] with a
    gradient that lets saturated pixels move back inside).
    """
    decorrelate = decorrelate and u.shape[1] == 3
    x = decorrelated_to_rgb(u) if decorrelate else u
    if squash == "sigmoid":
        return torch.sigmoid(x)
    if squash == "clip":
        if decorrelate:
            x = x + torch.tensor(COLOR_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        else:
            x = x + 0.5
        return _ClipInward.apply(2 * x - 1) / 2 + 0.5
    raise ValueError(f"unknown squash '{squash}': choose one of {', '.join(SQUASHES)}")


class _ClipInward(torch.autograd.Function):
    """Clip z to [-1, 1]; the gradient passes unchanged except where |z| >= 1 and the descent
    step (-grad) would push z further outward (Lucid's intent; its code has the sign flipped)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z)
        return z.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (z,) = ctx.saved_tensors
        outward = (z.abs() >= 1) & (-grad * z.sign() > 0)
        return grad.masked_fill(outward, 0.0)
