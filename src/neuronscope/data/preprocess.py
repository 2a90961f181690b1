"""Turning photos into model inputs: the one place where cropping, resizing and normalization live.

Images inside neuronscope are float tensors (B, C, H, W) in the model's value range, [0, 1] for
every zoo model. ``prepare`` crops and resizes a photo to that form; ``normalize`` maps it to what
the network was trained on and is applied by ``capture`` right before the forward pass.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NeuronscopeError


def to_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """An (H, W, C) or (H, W) array in [0, 1], or a (C, H, W) / (B, C, H, W) tensor, as (B, C, H, W)."""
    if isinstance(image, torch.Tensor):
        t = image.float()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4:
            raise NeuronscopeError(f"expected an image tensor of shape (C, H, W) or (B, C, H, W), got {tuple(image.shape)}")
        return t
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise NeuronscopeError(f"expected an image array of shape (H, W) or (H, W, C), got {array.shape}")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey to RGB by repetition, RGB to grey by luminance; anything else is an error."""
    have = x.shape[1]
    if have == channels:
        return x
    if have == 1:
        return x.expand(-1, channels, -1, -1)
    if have == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * weights).sum(1, keepdim=True)
    raise NeuronscopeError(f"the image has {have} channels but the model expects {channels}")


def center_crop_resize(x: torch.Tensor, size: tuple[int, int], crop_fraction: float = 1.0) -> torch.Tensor:
    """Crop the largest centred box with the aspect ratio of ``size``, shrunk by ``crop_fraction``,
    then resize it to ``size`` (bicubic, antialiased) and clamp to [0, 1].

    For a square target and crop_fraction 0.875 this is the usual "short side, centre 87.5 %" crop.
    """
    height, width = x.shape[-2:]
    target_h, target_w = size
    scale = min(height / target_h, width / target_w) * crop_fraction
    crop_h = max(1, min(height, round(target_h * scale)))
    crop_w = max(1, min(width, round(target_w * scale)))
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    x = x[..., top : top + crop_h, left : left + crop_w]
    if (crop_h, crop_w) != (target_h, target_w):
        x = F.interpolate(x, size=(target_h, target_w), mode="bicubic", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def normalize(x: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> torch.Tensor:
    """(x - mean) / std per channel; the identity when no normalization is set."""
    if mean is None or std is None:
        return x
    shape = (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    std_t = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x - mean_t) / std_t
