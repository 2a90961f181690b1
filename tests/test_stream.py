"""One pass over a source for many consumers: each image decoded once, each model run once per
batch, and every consumer's result the same as from a pass of its own (real Lite0 and Lite1)."""
import numpy as np
import pytest
import torch
from PIL import Image

import neuronscope as ns
from neuronscope.atlas import AtlasConfig, AtlasSamples, collect
from neuronscope.comparison.match import finish_matching, unit_matching
from neuronscope.data.loading import Preparer
from neuronscope.data.sources import FirstSource, bundled_source, first, folder_source
from neuronscope.examples import ExamplesConfig, ExamplesPass, dataset_examples
from neuronscope.examples.inputs import ExampleImages
from neuronscope.stream import PassConfig, stream

LAYERS = ["blocks.2.1", "blocks.4.2"]
QUIET = PassConfig(batch=5, workers=0, progress=False)


class Counting(FirstSource):
    """The first items of the bundled crops, counting every decode."""

    def __init__(self, count: int, stop_at: int | None = None) -> None:
        super().__init__(bundled_source(), count)
        self.loads, self.stop_at = 0, stop_at

    def load(self, key):
        if self.stop_at is not None and key == self.keys()[self.stop_at]:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the pass
        self.loads += 1
        return super().load(key)


@pytest.fixture(scope="module")
def lite1():
    return ns.load("efficientnet_lite1")


def _consumers(lite0, lite1):
    examples = ExamplesPass(lite0, bundled_source(), LAYERS, ExamplesConfig(k=4, progress=False))
    matching = unit_matching(lite0, lite1, ["blocks.4.2"], ["blocks.4.3"])
    samples = AtlasSamples(lite0, "blocks.4.2", AtlasConfig(positions=3, attributions=False, progress=False))
    return examples, matching, samples


def test_one_pass_reads_each_image_once_and_gives_each_consumer_its_own_results(lite0, lite1):
    source = Counting(12)
    examples, matching, samples = _consumers(lite0, lite1)
    result = stream(source, [examples.accumulator, matching, samples], QUIET)
    examples.finish(result)
    assert source.loads == 12 and result.images == 12 and result.skipped == []

    alone = dataset_examples(lite0, first(bundled_source(), 12), LAYERS, ExamplesConfig(k=4, progress=False, workers=0))
    for layer in LAYERS:
        shared = examples.results[layer]
        assert shared.keys == alone[layer].keys and np.array_equal(shared.top_values, alone[layer].top_values)
        assert np.array_equal(shared.top_pos, alone[layer].top_pos)
    matches = finish_matching(matching, source, result)
    own = ns.match_units(lite0, lite1, first(bundled_source(), 12), ["blocks.4.2"], ["blocks.4.3"],
                         ns.MatchConfig(progress=False, workers=0, batch=7))  # other batches: the same sums
    np.testing.assert_allclose(matches.cka, own.cka, atol=1e-9)
    np.testing.assert_allclose(matches.correlation("blocks.4.2", "blocks.4.3"),
                               own.correlation("blocks.4.2", "blocks.4.3"), atol=1e-5, equal_nan=True)
    atlas = samples.finish()
    collected = collect(lite0, first(bundled_source(), 12), "blocks.4.2",
                        AtlasConfig(positions=3, attributions=False, progress=False))
    assert torch.equal(atlas.positions, collected.positions) and atlas.keys == collected.keys
    torch.testing.assert_close(atlas.activations, collected.activations)


def test_a_shared_pass_resumes_from_its_checkpoint_with_every_consumer(lite0, lite1, tmp_path):
    checkpoint = tmp_path / "pass.npz"
    config = PassConfig(batch=4, workers=0, checkpoint_every=1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        stream(Counting(14, stop_at=10), [c if not isinstance(c, ExamplesPass) else c.accumulator
                                          for c in _consumers(lite0, lite1)], config, checkpoint=checkpoint)
    assert checkpoint.exists()
    source = Counting(14)
    examples, matching, samples = _consumers(lite0, lite1)
    result = stream(source, [examples.accumulator, matching, samples], config, checkpoint=checkpoint)
    assert source.loads == 14 - 8  # checkpoints after every batch of 4: items 8.. were left
    examples.finish(result)
    result.forget_checkpoint()
    assert not checkpoint.exists()

    whole = Counting(14)
    again = _consumers(lite0, lite1)
    found = stream(whole, [again[0].accumulator, again[1], again[2]], config)
    again[0].finish(found)
    for layer in LAYERS:
        assert examples.results[layer].keys == again[0].results[layer].keys
        assert np.array_equal(examples.results[layer].top_values, again[0].results[layer].top_values)
    resumed, uninterrupted = finish_matching(matching, source, result), finish_matching(again[1], whole, found)
    np.testing.assert_allclose(resumed.cka, uninterrupted.cka, atol=1e-12)
    assert samples.finish().keys == again[2].finish().keys
    torch.testing.assert_close(samples.finish().activations, again[2].finish().activations)


def test_unreadable_items_come_back_as_a_value(lite0, tmp_path):
    for i, (_, image) in enumerate(first(bundled_source(["coffee"]), 3)):
        Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "zz-broken.jpg").write_bytes(b"garbage")
    source = folder_source(tmp_path)
    examples = ExamplesPass(lite0, source, ["blocks.1.0"], ExamplesConfig(k=2, progress=False))
    result = stream(source, [examples.accumulator], QUIET)
    assert result.images == 3 and [key for key, _ in result.skipped] == ["zz-broken.jpg"]
    assert "cannot read" in result.skipped[0][1] and not hasattr(source, "skipped")  # the source holds no state
    items = source.items()
    assert [key for _, key, _ in items] == ["0.png", "1.png", "2.png"] and [k for k, _ in items.skipped] == ["zz-broken.jpg"]


def test_accumulators_with_the_same_name_or_two_models_of_one_name_are_refused(lite0):
    examples = ExamplesPass(lite0, bundled_source(), LAYERS, ExamplesConfig(k=2, progress=False)).accumulator
    twin = ExamplesPass(lite0, bundled_source(), LAYERS, ExamplesConfig(k=2, progress=False)).accumulator
    with pytest.raises(ns.NeuronscopeError, match="same thing"):
        stream(first(bundled_source(), 2), [examples, twin], QUIET)
    other = ns.load("efficientnet_lite0")  # another object of the same name
    with pytest.raises(ns.NeuronscopeError, match="two different models are named"):
        stream(first(bundled_source(), 2), [examples, ExamplesPass(other, bundled_source(), ["blocks.1.0"],
                                                                    ExamplesConfig(k=2)).accumulator], QUIET)


def test_example_images_decode_each_item_once_for_every_model(lite0, lite1):
    source = Counting(6)
    images = ExampleImages(source)
    keys = list(source.keys())
    a, b = Preparer.of(lite0), Preparer.of(lite1)
    images.prefetch({a: keys[:4], b: keys[2:]}, raw=[keys[0]])
    assert source.loads == 6 and images.loads == 6
    x = images.inputs(lite1)(keys[3])
    assert x.shape == (1, 3, 240, 240) and source.loads == 6  # kept from the prefetch
    torch.testing.assert_close(x, lite1.input(bundled_source().load(keys[3])), rtol=0, atol=0)
    assert images.raw(keys[0]).shape[-1] == 3 and source.loads == 6
    small = ExampleImages(Counting(6), budget_mb=1)  # room for one 224 px input: the oldest is dropped
    small.prefetch({a: keys[:2]})
    small.prepared(a, keys[0])
    assert small.source.loads == 3
