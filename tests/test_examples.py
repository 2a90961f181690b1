from dataclasses import replace

"""Dataset examples: the stored top-k are the true maxima over the source, cached and resumable."""

import numpy as np
import pytest
import torch
from PIL import Image

import neuronscope as ns
from neuronscope.capture import capture
from neuronscope.data.sources import FirstSource, bundled_source, first, folder_source
from neuronscope.examples.receptive import effective_extent, receptive_field
from neuronscope.examples.topk import (
    ExamplesConfig,
    dataset_examples,
    example_crop,
    example_image,
)
from neuronscope.readout import layer_activations

LAYERS = ["blocks.2.0", "blocks.4.1"]
CONFIG = ExamplesConfig(k=5, batch=8, progress=False)


@pytest.fixture(scope="module")
def source():
    return first(bundled_source(), 24)


@pytest.fixture(scope="module")
def found(lite0, source):
    return dataset_examples(lite0, source, LAYERS, CONFIG)


@pytest.fixture(scope="module")
def brute(lite0, source):
    """Every image alone through the model: per layer, (images, channels, H, W) activations."""
    acts = {layer: [] for layer in LAYERS}
    keys = []
    with torch.no_grad(), capture(lite0, LAYERS) as cap:
        for key, image in source:
            keys.append(key)
            for layer, value in cap(lite0.prepare(image)).items():
                acts[layer].append(value[0])
    return keys, {layer: torch.stack(values) for layer, values in acts.items()}


def test_top_examples_are_the_maxima_over_the_source(lite0, source, found, brute):
    keys, acts = brute
    for layer in LAYERS:
        result = found[layer]
        assert result.top_values.shape == (lite0.layer(layer).channels, 5) and result.images == 24
        per_image = acts[layer].flatten(2).amax(2).T.numpy()  # (channels, images)
        expected = -np.sort(-per_image, axis=1)[:, :5]
        assert np.allclose(result.top_values, expected, atol=1e-4)  # sorted, and the true top-k
        assert np.all(np.diff(result.top_values, axis=1) <= 0)
        assert np.array_equal(result.max_value, result.top_values[:, 0])

    units = [("blocks.2.0", c) for c in (0, 7, 15, 23, 39)] + [("blocks.4.1", c) for c in (1, 30, 55, 80, 111)]
    for layer, channel in units:
        best = found[layer].top(channel)[0]
        _, recomputed = layer_activations(lite0, source.load(best.key), layer)
        assert abs(float(recomputed[channel, best.y, best.x]) - best.value) < 1e-4
        assert abs(float(recomputed[channel].max()) - best.value) < 1e-4  # the position is the argmax
        overall = acts[layer][:, channel].flatten(1).amax(1)
        assert abs(float(overall.max()) - best.value) < 1e-4  # no image of the source beats it
        assert abs(float(overall[keys.index(best.key)]) - best.value) < 1e-4


def test_results_are_reproducible_and_independent_of_batching(lite0, source, found):
    again = dataset_examples(lite0, source, LAYERS, CONFIG)
    for layer in LAYERS:
        assert again[layer].keys == found[layer].keys
        for name in ("top_values", "top_index", "top_pos", "bottom_values", "bottom_index", "bottom_pos"):
            assert np.array_equal(getattr(again[layer], name), getattr(found[layer], name)), name
    rebatched = dataset_examples(lite0, source, ["blocks.2.0"], ExamplesConfig(k=5, batch=5, progress=False))["blocks.2.0"]
    assert np.allclose(rebatched.top_values, found["blocks.2.0"].top_values, atol=1e-4)
    assert [[e.key for e in rebatched.top(c)] for c in range(40)] == [[e.key for e in found["blocks.2.0"].top(c)] for c in range(40)]


def test_decoding_in_worker_processes_gives_the_same_results(lite0, source, found):
    for workers in (0, 2):
        again = dataset_examples(lite0, source, LAYERS, replace(CONFIG, workers=workers))
        for layer in LAYERS:
            assert again[layer].keys == found[layer].keys and again[layer].images == 24
            for name in ("top_values", "top_index", "top_pos", "bottom_values", "bottom_index", "bottom_pos"):
                assert np.array_equal(getattr(again[layer], name), getattr(found[layer], name)), (workers, name)
    with pytest.raises(ns.NeuronscopeError, match="workers must be 0 or more"):
        dataset_examples(lite0, source, LAYERS, replace(CONFIG, workers=-1))


def test_bottom_examples_only_for_layers_that_go_negative(lite0, source, brute, found):
    keys, acts = brute
    result = found["blocks.2.0"]  # a residual sum of norm outputs: pre-activation
    assert result.bottom_values is not None and result.min_value < 0
    per_image = acts["blocks.2.0"].flatten(2).amin(2).T.numpy()
    assert np.allclose(result.bottom_values, np.sort(per_image, axis=1)[:, :5], atol=1e-4)
    worst = result.bottom(3)[0]
    assert abs(float(acts["blocks.2.0"][keys.index(worst.key), 3, worst.y, worst.x]) - worst.value) < 1e-4

    relu = dataset_examples(lite0, source, ["blocks.2.0.act1"], CONFIG)["blocks.2.0.act1"]  # after ReLU6
    assert relu.bottom_values is None and relu.min_value >= 0
    with pytest.raises(ns.NeuronscopeError, match="never negative"):
        relu.bottom(0)
    forced = dataset_examples(lite0, source, ["blocks.2.0.act1"], ExamplesConfig(k=5, batch=8, bottom=True, progress=False))
    assert forced["blocks.2.0.act1"].bottom_values is not None
    hidden = dataset_examples(lite0, source, ["blocks.2.0"], ExamplesConfig(k=5, batch=8, bottom=False, progress=False))
    assert hidden["blocks.2.0"].bottom_values is None


def test_receptive_fields_and_crops(lite0, source, found):
    assert receptive_field(lite0, "act1") == (3, 2)  # the 3x3 stride-2 stem
    assert receptive_field(lite0, "blocks.0.0") == (7, 2)  # plus a 3x3 depthwise conv
    size, stride = receptive_field(lite0, "blocks.2.0")
    assert stride == 8 and 20 < size < 224

    example = found["blocks.2.0"].top(7)[0]
    top, left, bottom, right = example.box
    assert 0 <= top < bottom <= 224 and 0 <= left < right <= 224 and bottom - top <= size
    # Everything the unit sees lies inside its box: noise outside the box leaves it unchanged.
    image = example_image(lite0, source, example.key)
    assert image.shape == (224, 224, 3) and torch.equal(torch.from_numpy(image).permute(2, 0, 1), lite0.prepare(source.load(example.key))[0])
    noisy = np.random.default_rng(0).random(image.shape).astype(np.float32)
    noisy[top:bottom, left:right] = image[top:bottom, left:right]
    _, acts = layer_activations(lite0, torch.from_numpy(noisy).permute(2, 0, 1)[None], "blocks.2.0")
    assert abs(float(acts[7, example.y, example.x]) - example.value) < 1e-4

    crop = example_crop(lite0, source, example, size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.float32 and 0 <= crop.min() and crop.max() <= 1
    corner = found["blocks.2.0"].box(0, 0)
    assert corner[0] == 0 and corner[1] == 0 and corner[2] < size  # clipped to the image


def test_cache_hit_runs_nothing(lite0, source, found, tmp_path, monkeypatch):
    first_run = dataset_examples(lite0, source, LAYERS, CONFIG, cache_dir=tmp_path)
    folder = next((tmp_path / "efficientnet_lite0" / source.fingerprint()).iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["blocks.2.0.json", "blocks.2.0.npz", "blocks.4.1.json", "blocks.4.1.npz"]

    class Untouchable(FirstSource):
        def load(self, key):
            raise AssertionError("the cache hit read an image")

    def no_forward(*args, **kwargs):
        raise AssertionError("the cache hit ran the model")

    monkeypatch.setitem(lite0.module.__dict__, "forward", no_forward)  # removed again afterwards, not rebound
    cached = dataset_examples(lite0, Untouchable(bundled_source(), 24), LAYERS, CONFIG, cache_dir=tmp_path)
    for layer in LAYERS:
        assert cached[layer].keys == first_run[layer].keys == found[layer].keys
        assert np.array_equal(cached[layer].top_values, first_run[layer].top_values)
        assert np.array_equal(cached[layer].top_pos, found[layer].top_pos)
        assert cached[layer].top(3) == first_run[layer].top(3)


def test_an_interrupted_pass_resumes_from_its_checkpoint(lite0, source, tmp_path):
    config = ExamplesConfig(k=5, batch=4, checkpoint_every=2, progress=False, workers=0)  # loads counted in-process
    layers = ["blocks.1.1", "blocks.3.0"]

    class Interrupted(FirstSource):  # same items, same fingerprint; "Ctrl-C" at item 19
        def load(self, key):
            if key == self.keys()[19]:
                raise KeyboardInterrupt
            return super().load(key)

    class Counting(FirstSource):
        loads = 0

        def load(self, key):
            Counting.loads += 1
            return super().load(key)

    with pytest.raises(KeyboardInterrupt):
        dataset_examples(lite0, Interrupted(bundled_source(), 24), layers, config, cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("checkpoint-*.npz"))) == 1 and not list(tmp_path.rglob("*.json"))

    resumed = dataset_examples(lite0, Counting(bundled_source(), 24), layers, config, cache_dir=tmp_path)
    assert Counting.loads == 24 - 16  # checkpoints after batches 2 and 4: items 16.. were left
    assert not list(tmp_path.rglob("checkpoint-*.npz"))
    whole = dataset_examples(lite0, source, layers, config)
    for layer in layers:
        assert resumed[layer].keys == whole[layer].keys and resumed[layer].images == 24
        for name in ("top_values", "top_index", "top_pos", "bottom_values", "bottom_index", "bottom_pos"):
            a, b = getattr(resumed[layer], name), getattr(whole[layer], name)
            assert (a is None and b is None) or np.array_equal(a, b), name


def test_bad_layers_sources_and_settings_fail_clearly(lite0, source, tmp_path):
    with pytest.raises(ns.NeuronscopeError, match="unknown layer 'blocks.2.O'.*did you mean"):
        dataset_examples(lite0, source, ["blocks.2.O"], CONFIG)
    with pytest.raises(ns.NeuronscopeError, match="k must be at least 1"):
        dataset_examples(lite0, source, LAYERS, ExamplesConfig(k=0))
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(ns.NeuronscopeError, match="all 2 items failed"):
        dataset_examples(lite0, folder_source(tmp_path), LAYERS, CONFIG)


def test_a_folder_with_some_corrupt_files_still_works(lite0, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, (_, image) in enumerate(first(bundled_source(["coffee"]), 3)):
        Image.fromarray((image * 255).astype(np.uint8)).save(photos / f"{i}.png")
    (photos / "zz-broken.jpg").write_bytes(b"garbage")
    source = folder_source(photos)
    found = dataset_examples(lite0, source, ["blocks.1.0"], ExamplesConfig(k=9, batch=2, progress=False),
                             cache_dir=tmp_path / "cache")
    result = found["blocks.1.0"]
    assert result.images == 3 and result.top_values.shape == (24, 3)  # k is capped by the images seen
    assert sorted(result.keys) == ["0.png", "1.png", "2.png"]
    assert [key for key, _ in result.skipped] == ["zz-broken.jpg"] and "cannot read" in result.skipped[0][1]
    manifest = next((tmp_path / "cache").rglob("blocks.1.0.json")).read_text()
    assert "zz-broken.jpg" in manifest and '"images": 3' in manifest


def test_the_effective_field_is_inside_the_full_field_and_grows_with_depth(lite0):
    sides = [effective_extent(lite0, layer, 0.8)[0] for layer in ("blocks.1.1", "blocks.3.2", "blocks.5.3")]
    assert sides == sorted(sides) and sides[0] < sides[-1]
    assert effective_extent(lite0, "blocks.3.2", 0.8)[0] < receptive_field(lite0, "blocks.3.2")[0]
    assert effective_extent(lite0, "act1", 1.0) == (3, 3)  # all of the gradient: the full 3x3 field
    assert effective_extent(lite0, "logits") is None
