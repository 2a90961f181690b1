"""Matching units across models (``ns.match_units``, ``neuronscope compare``) on the real weights.

The measured numbers these tests rest on (96 bundled crops, default layers, ``grid="pair"``)
are in docs/comparison.md; the full 330 crops give the same picture.
"""
import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import neuronscope as ns
from neuronscope.cli.main import main
from neuronscope.comparison import UnitMatches
from neuronscope.data import bundled_source, first
from neuronscope.models.depth import representative_layers

USER_MODELS = Path(__file__).parent / "user_models"
CROPS = 96
"""Crops of the bundled photos the real-model tests use: the results below hold at 96 as at 330."""
QUIET = ns.MatchConfig(progress=False)


@pytest.fixture(scope="module")
def crops():
    return first(bundled_source(), CROPS)


@pytest.fixture(scope="module")
def lite1():
    return ns.load("efficientnet_lite1")


@pytest.fixture(scope="module")
def self_matches(lite0):
    return ns.match_units(lite0, lite0, source=first(bundled_source(), 48), config=QUIET)


def test_lite0_matched_to_itself_finds_every_unit_itself(self_matches, lite0):
    m = self_matches
    assert m.layers_a == m.layers_b == representative_layers(lite0)
    np.testing.assert_allclose(np.diag(m.cka), 1.0, atol=1e-6)
    assert (m.cka[~np.eye(len(m.layers_a), dtype=bool)] < 0.999).all()  # other layers are other representations
    for layer in m.layers_a:
        index, values = m.best(layer, layer, k=2)
        live = np.setdiff1d(np.arange(len(index)), m.dead_a[layer])
        assert len(live) > 0.9 * len(index)
        np.testing.assert_array_equal(index[live, 0], live)
        np.testing.assert_allclose(values[live, 0], 1.0, atol=1e-6)
        assert np.nanmax(values[:, 1]) < 0.999  # no other unit duplicates one
        np.testing.assert_allclose(m.mean_best[m.layers_a.index(layer), m.layers_b.index(layer)], 1.0, atol=1e-6)
    assert m.images == 48 and "UnitMatches(efficientnet_lite0 (6 layers) vs efficientnet_lite0 (6 layers), 48 images" in repr(m)


def test_matches_save_and_load_as_the_same_arrays(self_matches, tmp_path):
    paths = self_matches.save(tmp_path)
    assert sorted(p.name for p in paths) == ["matches.json", "matches.npz"]
    summary = json.loads((tmp_path / "matches.json").read_text(), parse_constant=_no_nan)  # strict JSON: no NaN
    assert summary["format"] == "unit-matches-v1" and len(summary["pairs"]) == 36
    assert summary["best_a"]["blocks.4.2"]["blocks.4.2"]["channels"][17][0] == 17
    back = UnitMatches.load(tmp_path)
    assert (back.layers_a, back.layers_b, back.images) == (self_matches.layers_a, self_matches.layers_b, 48)
    np.testing.assert_array_equal(back.cka, self_matches.cka)
    for key, r in self_matches.correlations.items():
        np.testing.assert_array_equal(back.correlations[key], r)
    assert back.matches("blocks.4.2:17")["blocks.4.2"][0][0] == 17
    with pytest.raises(ns.NeuronscopeError, match="did you mean"):
        back.matches("blocks.4.3:17")


def _no_nan(name):
    raise AssertionError(f"{name} in JSON")


def _tiny(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, 2, 1)), ("relu1", nn.ReLU()), ("conv2", nn.Conv2d(8, 12, 3, 2, 1)),
        ("relu2", nn.ReLU()), ("pool", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(12, 5))]))


def test_a_channel_permuted_copy_is_matched_back_with_correlation_one():
    """Plumbing: a random-weight network and a copy whose channels are permuted compute the same
    units in another order; the permutation comes back, each unit at correlation 1, CKA 1. A
    unit that is constant (dead) is reported and never matched."""
    net = _tiny()
    with torch.no_grad():
        net.conv1.weight[5] = 0
        net.conv1.bias[5] = -1.0  # relu1:5 is 0 everywhere
    p1, p2 = torch.randperm(8, generator=torch.Generator().manual_seed(1)), torch.randperm(12, generator=torch.Generator().manual_seed(2))
    copy = _tiny()
    copy.load_state_dict(net.state_dict())
    with torch.no_grad():  # copy unit j is net unit p[j]
        copy.conv1.weight.copy_(net.conv1.weight[p1])
        copy.conv1.bias.copy_(net.conv1.bias[p1])
        copy.conv2.weight.copy_(net.conv2.weight[p2][:, p1])
        copy.conv2.bias.copy_(net.conv2.bias[p2])
        copy.fc.weight.copy_(net.fc.weight[:, p2])
    a, b = ns.wrap(net, input_size=32, name="tiny"), ns.wrap(copy, input_size=32, name="tiny permuted")
    m = ns.match_units(a, b, first(bundled_source(), 12), ["relu1", "conv2"], ["relu1", "conv2"], QUIET)
    np.testing.assert_allclose(np.diag(m.cka), 1.0, atol=1e-6)
    for layer, p in (("relu1", p1), ("conv2", p2)):
        index, values = m.best(layer, layer, k=1)
        live = [i for i in range(len(p)) if i not in m.dead_a[layer]]
        np.testing.assert_array_equal(index[live, 0], torch.argsort(p).numpy()[live])
        np.testing.assert_allclose(values[live, 0], 1.0, atol=1e-6)
    dead = m.dead_a["relu1"]
    assert 5 in dead and m.dead_b["relu1"] == sorted(int(torch.argsort(p1)[d]) for d in dead)
    assert np.isnan(m.correlation("relu1", "relu1")[5]).all() and np.isnan(m.correlation("relu1", "conv2")[5]).all()
    index, _ = m.best("relu1", "relu1", k=8)
    assert index[5].tolist() == [-1] * 8 and not set(m.dead_b["relu1"]) & set(index.ravel().tolist())


def test_a_vit_and_a_resnet_of_other_grids_are_compared():
    """Plumbing: a ViT's token layers come as grids from capture and are compared with a
    ResNet's maps on their common grids; layers without positions are one cell."""
    vit = ns.load(f"{USER_MODELS / 'plumbing.py'}:vit")
    resnet = ns.load(f"{USER_MODELS / 'plumbing.py'}:resnet")
    m = ns.match_units(vit, resnet, first(bundled_source(), 8), ["blocks.0", "blocks.2"], ["layer1", "layer2", "fc"], QUIET)
    assert m.grids[:, :, 0].tolist() == [[8, 8, 1], [8, 8, 1]]  # tokens 8 x 8; layer1 16 x 16, layer2 8 x 8; fc one cell
    assert np.isfinite(m.cka[:, :2]).all() and ((m.cka[:, :2] > 0) & (m.cka[:, :2] <= 1 + 1e-9)).all()
    assert m.correlation("blocks.2", "layer2").shape == (32, 32)
    # CKA is symmetric: B against A gives the transposed table, on the same grids
    images = dict(source=first(bundled_source(), 8), config=QUIET)
    back = ns.match_units(resnet, vit, layers_a=["layer1", "layer2", "fc"], layers_b=["blocks.0", "blocks.2"], **images)
    np.testing.assert_allclose(back.cka, m.cka.T, atol=1e-6)
    np.testing.assert_allclose(back.correlation("layer2", "blocks.2"), m.correlation("blocks.2", "layer2").T, atol=1e-6)
    # a token model against itself: CKA 1 on the diagonal, and every live unit finds itself at correlation 1
    itself = ns.match_units(vit, vit, layers_a=["blocks.0", "blocks.2"], layers_b=["blocks.0", "blocks.2"], **images)
    np.testing.assert_allclose(np.diag(itself.cka), 1.0, atol=1e-6)
    assert itself.cka[0, 1] < 0.999
    index, values = itself.best("blocks.2", "blocks.2", k=1)
    live = np.setdiff1d(np.arange(32), itself.dead_a["blocks.2"])
    assert len(live) > 16
    np.testing.assert_array_equal(index[live, 0], live)
    np.testing.assert_allclose(values[live, 0], 1.0, atol=1e-6)


@pytest.mark.slow
def test_lite0_and_lite1_are_most_alike_at_the_same_relative_depth(lite0, lite1, crops):
    """Universality across resolution and depth: for every layer of Lite0, the Lite1 layer of
    highest CKA is the one at the same relative depth (measured: all 6, depth differences
    0.006-0.034; the next representative layer is 0.12 or more away)."""
    m = ns.match_units(lite0, lite1, source=crops, config=QUIET)
    assert (m.grids[0, 0] == 56).all() and (m.grids[-1, -1] == 7).all()
    best = np.nanargmax(m.cka, axis=1)
    gap = np.abs(m.depth_b[best] - m.depth_a)
    print("\nLite0 vs Lite1:", {a: (m.matched_layer(a), round(float(m.cka[i, best[i]]), 3)) for i, a in enumerate(m.layers_a)})
    print("mean best-match correlation (rows: Lite0 layers, columns: Lite1 layers):\n", np.round(m.mean_best, 3))
    assert (gap <= 0.05).sum() >= 5, gap
    diagonal = np.diag(m.cka)
    assert diagonal.mean() > np.mean(m.cka[~np.eye(6, dtype=bool)]) + 0.2
    matched = np.array([m.mean_best[i, m.layers_b.index(m.matched_layer(a))] for i, a in enumerate(m.layers_a)])
    assert (matched > 0.2).all() and (matched < 0.6).all(), matched  # real partners, far from copies (1.0)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_cli_writes_the_heatmap_sheet_and_numbers(capsys, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, _ = run(capsys, "compare", "efficientnet_lite0", "efficientnet_lite1", "--layers", "blocks.2.1,blocks.3.2",
                          "--layers-b", "matched", "--images", "16", "--units", "2", "--steps", "8", "--no-progress", "-o", str(out))
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "matches.json", "matches.npz", "matches.png", "similarity.png"]
    summary = json.loads((out / "matches.json").read_text())
    assert summary["model_b"]["layers"] == ["blocks.2.1", "blocks.3.2"] and summary["images"] == 16  # nearest depths
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "unit matches" and manifest["model"] == "efficientnet_lite0" and len(manifest["shown"]) == 2
    assert all(math.isfinite(p["correlation"]) for p in manifest["shown"])
    for name in ("similarity.png", "matches.png"):
        picture = np.asarray(Image.open(out / name).convert("RGB"))
        assert picture.shape[0] > 150 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 50
    assert "blocks.2.1" in stdout and "blocks.3.2" in stdout and str(out / "matches.png") in stdout


@pytest.mark.parametrize("argv, fragments", [
    (["--layers", "blocks.4.9"], ["unknown layer 'blocks.4.9'", "did you mean"]),
    (["--layers-b", "blocks.4.4"], ["unknown layer 'blocks.4.4' in efficientnet_lite1", "did you mean"]),
    (["--units", "blocks.0.0:3"], ["not in a compared layer"]),
    (["--grid", "fine"], ["--grid must be"]),
    (["-o", "out.png"], ["give a folder"]),
])
def test_compare_cli_errors_are_one_clear_line(capsys, tmp_path, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)
    rest = argv if "-o" in argv else [*argv, "-o", "out"]
    code, _, err = run(capsys, "compare", "efficientnet_lite0", "efficientnet_lite1", "--no-progress", *rest)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("neuronscope: error: ")
    for fragment in fragments:
        assert fragment in err, err
    assert not any(tmp_path.iterdir())
