"""Token layers as grids: a vision transformer's (B, N, D) tokens seen as a (B, D, H, W) map.

The first ``prefix`` tokens (a class token, a distillation token, registers) are kept apart; the
patch tokens, in row-major order, become a grid with the image's aspect ratio, so that
``layer:channel@x,y`` means the same for a transformer as for a convolution.
"""
from __future__ import annotations

import torch

MAX_PREFIX_TOKENS = 8
"""Tokens a transformer may put before its patches: a class token, a distillation token, registers."""


def grid_shape(patches: int, image_size: tuple[int, int]) -> tuple[int, int] | None:
    """(rows, columns) of ``patches`` tokens tiling an image of ``image_size`` (at least 2 x 2),
    or None when they do not tile it."""
    ratio = image_size[0] / image_size[1]
    columns = max(1, round((patches / ratio) ** 0.5))
    rows = patches // columns
    if rows * columns == patches and rows >= 2 and columns >= 2 and abs(rows / columns - ratio) < 0.1 * ratio:
        return rows, columns
    return None


def token_grid(count: int, image_size: tuple[int, int]) -> tuple[int, tuple[int, int]] | None:
    """``count`` tokens read as (prefix tokens, (rows, columns) of patches): the fewest prefix
    tokens whose remainder tiles the image; None when no reading exists (not a patch sequence)."""
    for prefix in range(0, min(MAX_PREFIX_TOKENS, count - 4) + 1):
        shape = grid_shape(count - prefix, image_size)
        if shape is not None:
            return prefix, shape
    return None


def tokens_to_grid(tokens: torch.Tensor, prefix: int, image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, D) tokens as (the (B, prefix, D) leading tokens, the (B, D, rows, columns) patch grid)."""
    batch, count, width = tokens.shape
    shape = grid_shape(count - prefix, image_size)
    if shape is None:
        raise ValueError(f"{count - prefix} patch tokens do not tile a {image_size[0]}x{image_size[1]} image")
    grid = tokens[:, prefix:, :].transpose(1, 2).reshape(batch, width, *shape)
    return tokens[:, :prefix, :], grid


def grid_to_tokens(front: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The inverse of ``tokens_to_grid``; ``front`` is broadcast to the grid's batch."""
    patches = grid.flatten(2).transpose(1, 2)
    return torch.cat([front.expand(patches.shape[0], -1, -1).to(patches.dtype), patches], dim=1)
