"""Semantic dictionaries and activation grids on the real Lite0."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neuronscope as ns
from neuronscope.attribution.dictionary import activation_grid, semantic_dictionary
from neuronscope.featurevis.render import RenderConfig


def test_the_dictionary_lists_the_strongest_channels_and_caches_their_icons(lite0, tmp_path):
    config = RenderConfig(steps=4, size=32, progress=False)
    first = semantic_dictionary(lite0, "coffee", "blocks.5.1", top=3, config=config, cache=tmp_path)
    x = lite0.prepare(ns.data.photo("coffee"))
    with torch.no_grad(), ns.capture(lite0, ["blocks.5.1"]) as cap:
        acts = cap(x)["blocks.5.1"][0]
    for row in range(7):
        for col in range(7):
            values = first.values[row, col]
            assert list(values) == sorted(values, reverse=True)
            np.testing.assert_allclose(values, acts[first.channels[row, col], row, col].numpy(), rtol=1e-6)
            assert acts[:, row, col].max().item() == pytest.approx(float(values[0]), rel=1e-6)
    cached = sorted(tmp_path.rglob("*.png"))
    assert len(cached) == len(first.icons) == len(set(first.channels.flatten()))
    again = semantic_dictionary(lite0, "coffee", "blocks.5.1", top=3, config=config, cache=tmp_path)
    assert sorted(tmp_path.rglob("*.png")) == cached
    for channel, icon in again.icons.items():
        torch.testing.assert_close(icon, first.icons[channel], atol=1 / 255, rtol=0)  # read back from 8-bit PNG


@pytest.mark.slow
def test_each_grid_cell_looks_like_its_own_position(lite0):
    grid = activation_grid(lite0, "chelsea", "blocks.5.1", config=RenderConfig(steps=64, size=48, progress=False))
    assert grid.cells.shape == (49, 3, 48, 48) and grid.magnitudes.max() == 1
    with torch.no_grad(), ns.capture(lite0, ["blocks.5.1"]) as cap:
        wanted = cap(lite0.prepare(ns.data.photo("chelsea")))["blocks.5.1"][0].flatten(1).T  # (49, C)
        cells = cap(grid.cells)["blocks.5.1"]
    centre = cells[:, :, cells.shape[2] // 2, cells.shape[3] // 2]
    similarity = F.cosine_similarity(centre[:, None], wanted[None], dim=2)  # (cell, position)
    diagonal = similarity.diagonal()
    assert (diagonal > similarity.median(dim=1).values).float().mean() >= 0.8
    off_diagonal = (similarity.sum() - diagonal.sum()) / (similarity.numel() - len(diagonal))
    assert diagonal.mean() - off_diagonal >= 0.1


def test_bad_requests_get_clear_errors(lite0):
    with pytest.raises(ns.NeuronscopeError, match="no spatial extent"):
        activation_grid(lite0, "chelsea", "logits")
    with pytest.raises(ns.NeuronscopeError, match="top must be in 1..192"):
        semantic_dictionary(lite0, "chelsea", "blocks.5.1", top=500)
