"""Aligning two layers' positions: every map is resampled to a common grid of relative locations.

Unit i of a layer of model A and unit j of a layer of model B are compared at the same places
of the same images. Their maps have different sizes (Lite0's ``blocks.1.1`` is 56 x 56 at 224
px, Lite1's ``blocks.1.2`` 60 x 60 at 240 px, a ViT's tokens 14 x 14), so each map is area-pooled
to a grid of relative positions: cell (y, x) of a G x G grid averages the part of the map that
covers rows ``y/G .. (y+1)/G`` and columns ``x/G .. (x+1)/G`` of the image, whatever its size.

Why area pooling to the *smaller* grid of each pair (``grid="pair"``, the default): a cell of
the coarser map already summarizes that region of the image, so averaging the finer map over
the same region puts both on the same footing without inventing detail (upsampling would
repeat the coarse cells and let one coarse value count as many samples). Each pair keeps the
finest resolution both of its layers have, so shallow pairs are compared on thousands of
positions per image instead of the 7 x 7 of the deepest layer; ``grid="common"`` (one grid, the
smallest of all layers) or an int G makes every pair share the same positions instead.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from ..errors import NeuronscopeError

Grid = tuple[int, int]
GRID_MODES = ("pair", "common")


def pair_grids(grids_a: Mapping[str, Grid], grids_b: Mapping[str, Grid], setting: str | int) -> dict[tuple[str, str], Grid]:
    """The grid each pair (layer of A, layer of B) is compared on, from the layers' own (h, w)
    grids and ``setting``: ``"pair"`` (the smaller of the two, per side), ``"common"`` (the
    smallest of all layers) or an int G (G x G for every pair)."""
    if isinstance(setting, bool) or not (isinstance(setting, int) or setting in GRID_MODES):
        raise NeuronscopeError(f"grid must be 'pair', 'common' or a positive int, got {setting!r}")
    if isinstance(setting, int):
        if setting < 1:
            raise NeuronscopeError(f"grid must be at least 1, got {setting}")
        fixed = (setting, setting)
    elif setting == "common":
        fixed = smallest([*grids_a.values(), *grids_b.values()])
    else:
        fixed = None
    return {(a, b): fixed or smallest([ga, gb]) for a, ga in grids_a.items() for b, gb in grids_b.items()}


def smallest(grids: Iterable[Grid]) -> Grid:
    """The smallest height and the smallest width among ``grids``."""
    grids = list(grids)
    return (min(g[0] for g in grids), min(g[1] for g in grids))


def layer_grid(spatial: tuple[int, int] | None) -> Grid:
    """A layer's own grid; a layer without positions (a vector, e.g. logits) is one cell."""
    return (1, 1) if spatial is None else (int(spatial[0]), int(spatial[1]))


def as_maps(activation: torch.Tensor) -> torch.Tensor:
    """A captured activation as (B, C, h, w): vectors (B, C) become 1 x 1 maps."""
    if activation.dim() == 2:
        return activation[:, :, None, None]
    if activation.dim() != 4:
        raise NeuronscopeError(f"cannot compare an activation of shape {tuple(activation.shape)}: "
                               "expected (B, C, H, W) maps or (B, C) vectors")
    return activation


def resample(maps: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(B, C, h, w) maps on ``grid`` (gh, gw), as rows of units: (B * gh * gw, C).

    Area pooling where the grid is no finer than the map (each cell the mean of the map over
    the cell's region of the image), bilinear interpolation where it is finer (only with an
    explicit grid larger than a layer)."""
    maps = as_maps(maps)
    if tuple(maps.shape[-2:]) != tuple(grid):
        if grid[0] <= maps.shape[-2] and grid[1] <= maps.shape[-1]:
            maps = F.adaptive_avg_pool2d(maps, grid)
        else:
            maps = F.interpolate(maps, size=grid, mode="bilinear", align_corners=False)
    return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])
