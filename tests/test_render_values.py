"""Values, not shapes, of the public render API and the caricature views, kept small (32-64 px,
a few steps): the fused render equals the unfused one, a render leaves the global RNGs alone,
snapshots, memory-budget batches, and the similarity views."""
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neuronscope as ns
from neuronscope import objectives as obj
from neuronscope.featurevis.caricature import (
    CaricatureConfig,
    caricatures_across_models,
    similarity_maps,
    similarity_overlay,
    similarity_sheet,
)
from neuronscope.models.depth import matched_layers

CHANNEL = obj.channel("blocks.3.1", 5)


def quiet(**changes) -> ns.RenderConfig:
    return ns.RenderConfig(progress=False, **{"size": 48, **changes})


def test_a_fast_render_equals_the_unfused_render(lite0):
    fast = ns.render(lite0, CHANNEL, quiet(steps=6, fast=True), batch=2)
    unfused = ns.render(lite0, CHANNEL, quiet(steps=6, fast=False), batch=2)
    assert not torch.allclose(fast.images[0], fast.images[1], atol=1e-2)  # two seeds, two images
    torch.testing.assert_close(fast.images, unfused.images, atol=1e-4, rtol=0)  # 1e-7 measured
    torch.testing.assert_close(fast.values, unfused.values, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(fast.history, unfused.history, atol=1e-3, rtol=1e-4)
    assert fast.history[-1].sum() > fast.history[0].sum()  # and it did optimize


def test_a_render_leaves_the_global_random_states_alone(lite0):
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    ns.render(lite0, CHANNEL, quiet(steps=2, size=32))
    ns.render_units(lite0, ["blocks.2.1:3", "logits:tabby"], quiet(steps=2, size=32))
    after = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    assert torch.equal(before[0], after[0])
    assert before[1] == after[1]
    assert before[2][0] == after[2][0] and np.array_equal(before[2][1], after[2][1]) and before[2][2:] == after[2][2:]


def test_snapshots_keep_the_images_of_those_steps(lite0):
    run = ns.render(lite0, CHANNEL, quiet(steps=8, snapshots=(1, 4)))
    assert sorted(run.snapshots) == [1, 4]
    assert all(s.shape == run.images.shape for s in run.snapshots.values())
    assert (run.snapshots[4] - run.snapshots[1]).abs().max() > 1e-3  # it moved between the two
    assert (run.images - run.snapshots[4]).abs().max() > 1e-3  # and after
    assert all(0 <= s.min() and s.max() <= 1 for s in run.snapshots.values())
    again = ns.render(lite0, CHANNEL, quiet(steps=8, snapshots=(1, 4)))
    for step in (1, 4):  # deterministic, like the images
        torch.testing.assert_close(again.snapshots[step], run.snapshots[step], rtol=0, atol=0)


def test_the_snapshot_of_step_k_is_the_image_after_k_steps(lite0):
    run = ns.render(lite0, CHANNEL, quiet(steps=4, snapshots=(4,)))
    torch.testing.assert_close(run.snapshots[4], run.images, atol=1e-6, rtol=0)
    four = ns.render(lite0, CHANNEL, quiet(steps=4))
    longer = ns.render(lite0, CHANNEL, quiet(steps=8, snapshots=(4,)))
    torch.testing.assert_close(longer.snapshots[4], four.images, atol=1e-6, rtol=0)


class Tiny(torch.nn.Module):
    """Two 16-channel convolutions and a class head: a plumbing model, cheap in float64."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.relu2 = torch.nn.ReLU()
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.relu2(self.conv2(self.relu1(self.conv1(x)))).mean((2, 3)))


def test_memory_budget_batches_give_the_images_of_one_batch():
    # in float64: in float32 the rounding of another batch size can flip the sign of a tiny gradient
    # component, which Adam's first steps turn into a full lr step (4e-3 seen on one lite0 unit)
    torch.manual_seed(0)
    model = ns.wrap(Tiny().double(), input_size=64)
    units = ["conv2:3", "conv1:5", "conv2:7", "logits:2", "conv1:0"]
    one = ns.render_units(model, units, quiet(steps=4, size=32))
    split = ns.render_units(model, units, quiet(steps=4, size=32, memory_budget_mb=1))
    assert one.manifest["batch_size"] >= len(units) > split.manifest["batch_size"]  # several batches
    assert split.labels == one.labels and one.images.dtype == torch.float64
    torch.testing.assert_close(split.images, one.images, atol=1e-9, rtol=0)
    torch.testing.assert_close(split.values, one.values, atol=1e-9, rtol=1e-9)
    assert len({tuple(i.flatten()[:8].tolist()) for i in one.images}) == len(units)  # not all one image
    assert (one.history[-1] > one.history[0]).all()  # every unit was optimized


# --- caricature views -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chelsea_pair(lite0):
    reference = lite0.prepare(ns.data.photo("chelsea"), 64)
    others = torch.cat([reference, reference.flip(-1), torch.full_like(reference, 0.5)])
    return reference, others


def test_similarity_maps_are_cosines_to_the_chosen_position(lite0, chelsea_pair):
    reference, others = chelsea_pair
    layer, (x, y) = "blocks.3.1", (1, 2)
    maps = similarity_maps(lite0, reference, others, layer, (x, y))
    with torch.no_grad(), ns.capture(lite0, [layer]) as cap:
        a = cap(others)[layer]
    assert maps.shape == (3, *a.shape[-2:])
    assert maps[0, y, x].item() == pytest.approx(1.0, abs=1e-6)  # the reference against itself, there
    assert maps.min() >= -1 - 1e-6 and maps.max() <= 1 + 1e-6
    assert maps[0].flatten().topk(2).values[1] < 1 - 1e-3  # elsewhere it is less alike
    expected = F.cosine_similarity(a, a[0, :, y, x].view(1, -1, 1, 1), dim=1)  # by hand
    torch.testing.assert_close(maps, expected)
    with pytest.raises(ns.NeuronscopeError, match="outside layer"):
        similarity_maps(lite0, reference, others, layer, (a.shape[-1], 0))


def test_the_similarity_overlay_glows_where_alike_and_outlines_the_cell():
    image = torch.zeros(3, 32, 32)
    similarity = torch.full((4, 4), -1.0)
    similarity[:, :2] = 1.0  # the left half is like the cell, the right half not at all
    picture = np.asarray(similarity_overlay(image, similarity, position=(3, 0)))
    assert picture.shape == (32, 32, 3)
    np.testing.assert_allclose(picture[16, 2], [178, 152, 18], atol=1)  # glow 0.7 * (1, 0.85, 0.1) on black
    np.testing.assert_array_equal(picture[16, 29], [0, 0, 0])  # the dimmed black image, no glow
    assert tuple(picture[0, 28]) == tuple(picture[7, 31]) == (0, 200, 255)  # cell (3, 0): x 24-31, y 0-7
    assert tuple(picture[12, 28]) != (0, 200, 255)  # only that cell
    plain = np.asarray(similarity_overlay(torch.ones(3, 32, 32), torch.full((4, 4), -1.0)))
    np.testing.assert_allclose(plain, np.full((32, 32, 3), 0.3 * 255), atol=1)  # nothing alike: image * 0.3


@pytest.fixture(scope="module")
def compared(lite0):
    config = CaricatureConfig(steps=3, size=48, progress=False)
    return caricatures_across_models([lite0, lite0], "chelsea", ["blocks.2.1", "blocks.4.2"], config)


def test_caricatures_across_a_model_and_itself(lite0, compared):
    results, sheet = compared.results, compared.sheet()
    assert compared.depths[0] == compared.depths[1] == [lite0.depth("blocks.2.1"), lite0.depth("blocks.4.2")]
    assert matched_layers(lite0, ["blocks.2.1", "blocks.4.2", "bn2"], lite0) == ["blocks.2.1", "blocks.4.2", "bn2"]
    assert [r.layers for r in results] == [["blocks.2.1", "blocks.4.2"]] * 2
    torch.testing.assert_close(results[0].images, results[1].images, rtol=0, atol=0)  # same model, same seeds
    torch.testing.assert_close(results[0].reference, results[1].reference, rtol=0, atol=0)
    assert sheet.width > sheet.height  # 3 columns (input, 2 layers), 2 rows


def test_matched_layers_pick_the_nearest_relative_depth(lite0):
    tiny = ns.wrap(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3),
                                       torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3)), input_size=16)
    layers = ["act1", "blocks.3.1", "bn2"]
    matched = matched_layers(lite0, layers, tiny)
    spatial = [info.name for info in tiny.layers if info.spatial]
    for layer, chosen in zip(layers, matched):
        gaps = {name: abs(tiny.depth(name) - lite0.depth(layer)) for name in spatial}
        assert gaps[chosen] == min(gaps.values()), (layer, gaps)
    assert matched[0] != matched[-1]  # shallow to shallow, deep to deep


def test_the_similarity_sheet_shows_both_overlays(lite0, compared):
    result = compared.results[0]
    position = (2, 1)  # blocks.4.2 is 3x3 at 48 px
    sheet = similarity_sheet(lite0, result, 1, position)
    both = torch.stack([result.reference, result.images[1]])
    maps = similarity_maps(lite0, both[:1], both, result.layers[1], position)
    assert maps[0, 1, 2].item() == pytest.approx(1.0, abs=1e-6) and not torch.allclose(maps[0], maps[1])
    overlays = [np.asarray(similarity_overlay(both[i], maps[i], position)).astype(int) for i in range(2)]
    height, width = overlays[0].shape[:2]
    gap = (sheet.width - 2 * width) // 3  # two cells on white, ``gap`` pixels apart
    cells = np.asarray(sheet).astype(int)
    for i, overlay in enumerate(overlays):
        left = gap + i * (width + gap)
        cell = cells[gap : gap + height, left : left + width]
        assert np.abs(cell - overlay).mean() < 2, i  # each cell is that image's overlay
