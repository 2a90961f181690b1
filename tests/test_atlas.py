"""Activation atlases (techniques.md section 17): binning, layout, whitening, attribution, class
filters on synthetic data with brute-force answers; a real atlas of Lite0 whose icons each
resemble their own cell's direction; the CLI."""
import json

import numpy as np
import pytest
import torch

import neuronscope as ns
from neuronscope.atlas import AtlasConfig, activation_atlas, collect
from neuronscope.atlas.classes import class_samples, magnitude, winning
from neuronscope.atlas.icons import icon_config, render_icons
from neuronscope.atlas.layout import (
    cell_of,
    grid_cells,
    layout_2d,
    normalize_layout,
    umap_available,
)
from neuronscope.atlas.whitening import whitened_cosine, whitening
from neuronscope.data.sources import bundled_source, first
from neuronscope.images import save_png

TEST_LAYER = "blocks.4.2"
TEST_CONFIG = AtlasConfig(positions=4, grid=6, steps=64, attributions=False, progress=False)
"""The suite's atlas: 330 crops x 4 positions = 1320 samples, 28 cells of 80 px icons at 64 steps
(diagonal dominance 0.96 measured; 0.82 at 32 steps, 0.82 with 64 px icons: see docs/atlas.md)."""


# --- grid, layout, whitening, filters: synthetic data -------------------------------------------


def test_binning_matches_brute_force_with_the_last_bin_closed():
    rng = np.random.default_rng(0)
    xy = rng.random((400, 2))
    xy[:4] = [[1.0, 1.0], [0.0, 0.0], [1.0, 0.3], [0.5, 1.0]]  # the edges of the square
    vectors = torch.as_tensor(rng.normal(size=(400, 7)), dtype=torch.float32)
    attributions = torch.as_tensor(rng.normal(size=(400, 5)), dtype=torch.float32)
    grid, threshold = 4, 20
    cells = grid_cells(xy, vectors, grid, threshold, attributions)
    expected = {}
    for i, (x, y) in enumerate(xy):
        cx = min(int(x * grid), grid - 1) if x < 1 else grid - 1
        cy = min(int(y * grid), grid - 1) if y < 1 else grid - 1
        expected.setdefault((cx, cy), []).append(i)
    kept = {key: members for key, members in expected.items() if len(members) > threshold}
    assert {tuple(c) for c in cells.xy.tolist()} == set(kept)
    assert 0 < len(kept) < len(expected)  # the threshold dropped some cells
    for i, (x, y) in enumerate(cells.xy.tolist()):
        members = kept[(x, y)]
        assert cells.counts[i] == len(members)
        assert sorted(cells.members[i].tolist()) == members
        torch.testing.assert_close(cells.directions[i], vectors[members].mean(0))
        torch.testing.assert_close(cells.attributions[i], attributions[members].mean(0))  # acceptance test 6
    assert cell_of(np.array([[1.0, 1.0]]), grid).tolist() == [[grid - 1, grid - 1]]
    assert cells.assignment[0].tolist() == [grid - 1, grid - 1]


def test_normalize_layout_lies_in_the_unit_square_and_clips_outliers():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(1000, 2)) * [3.0, 0.5] + [10.0, -4.0]
    xy[0] = [1e4, -1e4]  # one far outlier
    unit = normalize_layout(xy)
    assert unit.min() == 0.0 and unit.max() == 1.0
    assert unit[0].tolist() == [1.0, 0.0]  # clipped to the margin, not stretching the axis
    low, high = np.percentile(xy[1:], [1, 99], axis=0)
    inside = np.all((xy > low) & (xy < high), axis=1)
    spread = unit[inside].max(0) - unit[inside].min(0)
    assert np.all(spread > 0.7)  # the bulk still fills most of the square
    assert np.all(normalize_layout(np.ones((5, 2))) == 0.5)


@pytest.mark.parametrize("method", ["auto", "umap"])
def test_layout_keeps_well_separated_clusters_apart(method):
    if method == "umap" and not umap_available():
        pytest.skip("umap-learn is not installed (optional extra 'atlas')")
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(2)
    centres = rng.normal(size=(3, 64)) * 6
    labels = np.repeat(np.arange(3), 150)
    data = centres[labels] + rng.normal(size=(450, 64))
    xy, used = layout_2d(data, method, seed=0)
    assert used == ("tsne" if method == "auto" else "umap")
    assert trustworthiness(data, xy, n_neighbors=10) > 0.8
    cells = grid_cells(normalize_layout(xy), torch.as_tensor(data), 8, 5)
    purity = [np.bincount(labels[m]).max() / len(m) for m in cells.members]
    assert len(cells) >= 3 and min(purity) > 0.9


def test_whitening_inverts_the_second_moment_and_its_cosine_ignores_channel_mixing():
    rng = np.random.default_rng(3)
    a = torch.as_tensor(rng.normal(size=(2000, 12)) @ (np.eye(12) + 0.3 * rng.normal(size=(12, 12))), dtype=torch.float32)
    moment = a.double().T @ a.double() / len(a)
    eye = torch.eye(12, dtype=torch.float64)
    assert torch.allclose(whitening(a, ridge=0.0).double() @ moment, eye, atol=1e-3)
    ridge = 1e-3 * moment.diagonal().mean()  # the default ridge, relative to the mean diagonal
    assert torch.allclose(whitening(a).double() @ (moment + ridge * eye), eye, atol=1e-3)
    h, v = a[:5], a[100:108]
    mix = torch.as_tensor(rng.normal(size=(12, 12)), dtype=torch.float32)  # invertible re-mixing of channels
    before = whitened_cosine(h, v, whitening(a, ridge=1e-9))
    after = whitened_cosine(h @ mix, v @ mix, whitening(a @ mix, ridge=1e-9))
    assert torch.allclose(before, after, atol=1e-3)
    plain = whitened_cosine(h, v)
    assert not torch.allclose(plain, whitened_cosine(h @ mix, v @ mix), atol=1e-2)  # the plain cosine does change
    assert torch.allclose(plain, torch.nn.functional.cosine_similarity(h[:, None], v[None], dim=2), atol=1e-5)


def test_class_filters_are_the_winners_and_the_top_positive_attributions():
    rng = np.random.default_rng(4)
    attributions = torch.as_tensor(rng.normal(size=(300, 6)), dtype=torch.float32)
    k = 2
    assert winning(attributions, k).tolist() == [i for i in range(300) if int(attributions[i].argmax()) == k]
    top = magnitude(attributions, k, 400)
    values = attributions[top, k]
    assert (values > 0).all() and torch.all(values[:-1] >= values[1:])
    assert len(top) == int((attributions[:, k] > 0).sum())  # only positive ones, however many are asked for
    assert magnitude(attributions, k, 10).tolist() == top[:10].tolist()
    union = class_samples(attributions, k, 10)
    assert set(union.tolist()) == set(winning(attributions, k).tolist()) | set(top[:10].tolist())
    with pytest.raises(ns.NeuronscopeError, match="out of range"):
        class_samples(attributions, 6, 10)


# --- the real model ------------------------------------------------------------------------------


def test_attribution_is_activation_times_gradient_for_every_class(lite0):
    source = first(bundled_source(), 3)
    samples = collect(lite0, source, TEST_LAYER, AtlasConfig(positions=3, seed=5, progress=False), fast=False)
    assert len(samples) == 9 and samples.attributions.shape == (9, 1000)
    rows, cols = samples.positions[:, 0], samples.positions[:, 1]
    assert rows.min() >= 1 and cols.min() >= 1 and rows.max() <= 12 and cols.max() <= 12  # off the border
    assert len({tuple(p) for p in samples.positions[:3].tolist()}) == 3  # distinct within an image
    x = lite0.input(source.load(samples.keys[4]))
    (r, c), classes = samples.positions[4].tolist(), [281, 1, 500]
    with torch.enable_grad(), ns.capture(lite0, [TEST_LAYER, "logits"], grads=True) as cap:
        acts = cap(x)
        h = acts[TEST_LAYER]
        for k in classes:  # reverse mode, one class at a time
            (grad,) = torch.autograd.grad(acts["logits"][0, k], h, retain_graph=True)
            expected = float((grad[0, :, r, c] * h[0, :, r, c]).sum())
            assert samples.attributions[4, k].item() == pytest.approx(expected, rel=1e-3, abs=1e-5)
        torch.testing.assert_close(samples.activations[4], h[0, :, r, c].detach())
    again = collect(lite0, source, TEST_LAYER, AtlasConfig(positions=3, seed=5, batch=2, progress=False))  # the folded copy
    assert torch.equal(again.positions, samples.positions)  # the positions do not depend on the batch size
    torch.testing.assert_close(again.activations, samples.activations, rtol=0, atol=1e-3)
    scale = samples.attributions.abs().max()
    assert (again.attributions - samples.attributions).abs().max() < 5e-3 * scale


@pytest.fixture(scope="module")
def atlas(lite0):
    return activation_atlas(lite0, None, TEST_LAYER, config=TEST_CONFIG)


@pytest.mark.slow
def test_every_icon_resembles_its_own_cells_direction(atlas, tmp_path):
    assert 15 <= len(atlas) <= 36 and atlas.layout == "tsne"
    assert atlas.kept_samples == atlas.samples == 330 * 4
    assert atlas.cells.counts.min() > 5
    assert atlas.diagonal_dominance() > 0.8  # cosine at the centre position of the icon as rendered
    ranks = atlas.own_rank()
    assert (ranks < max(1, round(0.05 * len(atlas)))).float().mean() > 0.8  # acceptance test 5
    atlas.save(tmp_path)
    table = json.loads((tmp_path / "cells.json").read_text())
    assert len(table) == len(atlas) and all((tmp_path / row["icon"]).is_file() for row in table)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["kind"] == "atlas" and manifest["layout"]["used"] == "tsne"
    assert manifest["diagonal_dominance"] == pytest.approx(atlas.diagonal_dominance())
    canvas = atlas.canvas(labels=False)
    assert canvas.size == (6 * 80, 6 * 80)
    x, y = atlas.cells.xy[0]
    corner = np.asarray(canvas)[(5 - y) * 80 + 40, x * 80 + 40]  # y up: row 0 of the grid is at the bottom
    assert corner.tolist() != [255, 255, 255]
    save_png(tmp_path / "sheet.png", atlas.sheet())


def test_icons_are_reproducible_with_a_seed(lite0, atlas):
    config = icon_config(4, 48, seed=11, progress=False)
    vectors = atlas.cells.directions[:2]
    first_run, values, seeds = render_icons(lite0, TEST_LAYER, vectors, config, cosine_power=2.0, progress=False)
    second_run, _, _ = render_icons(lite0, TEST_LAYER, vectors, config, cosine_power=2.0, progress=False)
    assert seeds == [11, 12] and torch.equal(first_run, second_run)
    _, kept_values, kept_seeds = render_icons(lite0, TEST_LAYER, vectors, config, cosine_power=2.0, attempts=2,
                                              progress=False)
    assert torch.all(kept_values >= values) and set(kept_seeds) <= {11, 12, 13, 14}  # the best of two attempts


# --- the command line ----------------------------------------------------------------------------


def _run(capsys, *argv):
    from neuronscope.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_a_class_atlas_and_its_manifest(capsys, tmp_path):
    photos = tmp_path / "photos"
    for key, image in first(bundled_source(["chelsea", "coffee"]), 12):
        save_png(photos / f"{key.replace('@', '_')}.png", image)
    out = tmp_path / "atlas.png"
    code, printed, err = _run(capsys, "atlas", "efficientnet_lite0", TEST_LAYER, "--class", "tabby", "--source",
                              str(photos), "--grid", "3", "--steps", "4", "--icon", "48", "--no-progress", "-o", str(out),
                              "--icons", str(tmp_path / "icons"))
    assert code == 0, err
    assert out.is_file() and "cells from" in printed
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["target"] == 281 and manifest["target_label"] == "tabby" and manifest["samples"] == 12 * 8
    assert manifest["cells"] and all(row["count"] > 4 and row["label"] for row in manifest["cells"])
    assert (tmp_path / "icons" / "atlas.png").is_file() and (tmp_path / "icons" / "cells.json").is_file()


@pytest.mark.parametrize("argv, fragments", [
    (["blocks.4.x"], ["unknown layer", "did you mean", "blocks.4.2"]),
    (["logits"], ["no spatial extent"]),
    (["blocks.4.2", "--source", "chelsea.jpg", "--positions", "2"], ["not found"]),
    (["blocks.4.2", "--positions", "200"], ["positions per image must be 1..144"]),
    (["blocks.4.2", "--class", "tabbby"], ["tabby"]),
    (["blocks.4.2", "--grid", "0"], ["grid must be a positive integer"]),
    (["blocks.4.2", "--layout", "umap", "--grid", "3"], []),
])
def test_cli_errors_are_one_line(capsys, tmp_path, argv, fragments):
    if argv[1:2] == ["--layout"]:
        if umap_available():
            pytest.skip("umap-learn is installed here: the layout works")
        fragments = ["umap-learn", "neuronscope[atlas]"]
    out = tmp_path / "atlas.png"
    code, _, err = _run(capsys, "atlas", "efficientnet_lite0", *argv, "-o", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()


def test_cli_too_few_samples_for_the_grid_is_one_line(capsys, tmp_path):
    image = tmp_path / "one.png"
    save_png(image, bundled_source().load(bundled_source().keys()[0]))
    code, _, err = _run(capsys, "atlas", "efficientnet_lite0", TEST_LAYER, "--source", str(image), "--positions", "3",
                        "-o", str(tmp_path / "atlas.png"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "too few samples for the grid" in err
