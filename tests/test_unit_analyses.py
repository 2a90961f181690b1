"""Analyses a gallery shows, as library functions on their own: which attribution method to trust
at a layer, the classes a unit supports, how polysemantic it looks, layers by depth, crop sizes
and a unit's peak on an image (real Lite0 and real photos; a tiny built model where the answer
must be known exactly)."""
import numpy as np
import pytest
import torch

import neuronscope as ns
from neuronscope.attribution.agreement import agreement
from neuronscope.attribution.method import GRADIENT, INTEGRATED, best_method, method_agreements
from neuronscope.attribution.unit_classes import unit_classes
from neuronscope.circuits.polysemanticity import polysemanticity
from neuronscope.data.sources import bundled_source
from neuronscope.examples import ExamplesConfig, crop_extent, dataset_examples
from neuronscope.examples.receptive import MIN_CROP
from neuronscope.models.depth import matched_layers, nearest_depth, representative_layers
from neuronscope.readout import channel_peaks
from neuronscope.units import Unit


def test_agreement_is_the_correlation_of_sums_and_logits_over_the_chosen_classes():
    totals = torch.tensor([1.0, 2.0, 3.0, 10.0])
    assert agreement(totals, 2 * totals + 1) == pytest.approx(1.0)
    assert agreement(totals, -totals) == pytest.approx(-1.0)
    logits = torch.tensor([1.0, 2.0, 3.0, -5.0])
    assert agreement(totals, logits, [0, 1, 2]) == pytest.approx(1.0)  # the outlier class left out
    assert agreement(totals, logits) == pytest.approx(float(np.corrcoef(totals, logits)[0, 1]))


def test_integrated_gradients_are_trusted_at_mid_layers_and_both_methods_at_the_head(lite0):
    middle = method_agreements(lite0, "chelsea", "blocks.4.2")
    assert middle[INTEGRATED] > 0.7 > middle[GRADIENT]  # one-step attribution breaks down mid-network
    assert best_method(middle) == INTEGRATED
    head = method_agreements(lite0, "chelsea", "act2")
    assert head[GRADIENT] > 0.99 and head[INTEGRATED] > 0.99  # after act2: pooling and a linear layer
    assert best_method({GRADIENT: 0.9, INTEGRATED: 0.9}) == GRADIENT  # a tie: the cheaper one
    assert best_method({GRADIENT: 0.2, INTEGRATED: None}) == GRADIENT  # no forward mode


@pytest.mark.slow
def test_the_classes_a_unit_supports_are_its_attribution_averaged_over_its_top_examples(lite0):
    source = bundled_source(["chelsea", "coffee"])
    examples = dataset_examples(lite0, source, ["blocks.6.0"], ExamplesConfig(k=3, progress=False))["blocks.6.0"]
    found = unit_classes(lite0, examples, [5, 40], source.load, top=5, method=GRADIENT)
    for c in (5, 40):
        labels = [label for label, _ in found[c]]
        values = torch.zeros(len(labels))
        others = torch.zeros(20)
        rest = [k for k in range(0, 1000, 50) if lite0.labels[k] not in labels][:20]
        for example in examples.top(c):  # reverse mode, class by class: a_c . d logit_k / d a_c
            with torch.enable_grad(), ns.capture(lite0, ["blocks.6.0", "logits"], grads=True) as cap:
                acts = cap(lite0.input(source.load(example.key)))
                h = acts["blocks.6.0"]
                for i, k in enumerate([lite0.class_index(label) for label in labels] + rest):
                    (grad,) = torch.autograd.grad(acts["logits"][0, k], h, retain_graph=True)
                    value = float((grad[0, c] * h[0, c]).sum()) / 3
                    if i < len(labels):
                        values[i] += value
                    else:
                        others[i - len(labels)] += value
        assert [v for _, v in found[c]] == pytest.approx(values.tolist(), rel=1e-3, abs=1e-5)
        assert values.tolist() == sorted(values.tolist(), reverse=True) and float(others.max()) <= float(values[-1])


class TwoDetectors(torch.nn.Module):
    """A red detector and a blue detector, then a 1x1 layer: unit 0 fires for red OR blue (two
    cases), unit 1 for red only (one case)."""

    def __init__(self) -> None:
        super().__init__()
        self.detect = torch.nn.Conv2d(3, 2, 1, bias=False)
        self.act = torch.nn.ReLU()
        self.combine = torch.nn.Conv2d(2, 2, 1, bias=False)
        with torch.no_grad():
            self.detect.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])[:, :, None, None])
            self.combine.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 0.0]])[:, :, None, None])

    def forward(self, x):
        return self.combine(self.act(self.detect(x)))


def test_a_unit_that_fires_in_two_ways_is_more_polysemantic_than_one_that_fires_in_one():
    model = ns.wrap(TwoDetectors(), input_size=8, name="two_detectors", layers=["act", "combine"])
    rng = np.random.default_rng(0)
    images = {}
    for i in range(12):
        image = np.full((8, 8, 3), 0.1, dtype=np.float32)
        colour = (0, 2) if i % 2 else (2, 0)  # red or blue square of varying strength
        image[2:6, 2:6, colour[0]] = 0.5 + 0.5 * rng.random()
        images[f"{i}"] = image

    class Source(ns.data.ImageSource):
        name = "squares"

        def keys(self):
            return list(images)

        def load(self, key):
            return images[key]

        def fingerprint(self):
            return "squares"

    examples = dataset_examples(model, Source(), ["combine"], ExamplesConfig(k=12, progress=False))["combine"]
    found = polysemanticity(model, examples, [0, 1], images.__getitem__)
    assert found[0] > 0.5 and found[1] < 0.05, found  # red or blue: two cases; red alone: one


def test_layers_by_depth(lite0):
    assert representative_layers(lite0) == ["blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2", "blocks.5.3",
                                            "blocks.6.0"]
    depths = {"a": 0.1, "b": 0.5, "c": 0.52}
    assert nearest_depth(depths, 0.2) == "a" and nearest_depth(depths, 0.51) == "b"  # a tie: the first
    assert matched_layers(lite0, ["blocks.2.1", "blocks.4.2"], lite0) == ["blocks.2.1", "blocks.4.2"]
    with pytest.raises(ns.NeuronscopeError, match="no layers"):
        nearest_depth({}, 0.5)


def test_crops_grow_with_depth_and_peaks_are_the_channel_maxima(lite0):
    sizes = [crop_extent(lite0, layer) for layer in ("blocks.1.1", "blocks.3.2", "blocks.5.3")]
    assert sizes[0][0] >= MIN_CROP and sizes[0][0] < sizes[1][0] < sizes[2][0] <= 224
    assert crop_extent(lite0, "logits") is None
    x = torch.cat([lite0.input("chelsea"), lite0.input("coffee")])
    units = [Unit("blocks.4.2", 7), Unit("blocks.2.1", 3)]
    peaks = channel_peaks(lite0, x, units)
    with torch.no_grad(), ns.capture(lite0, ["blocks.2.1", "blocks.4.2"]) as cap:
        acts = cap(x)
    assert peaks.tolist() == pytest.approx([float(acts["blocks.4.2"][0, 7].max()), float(acts["blocks.2.1"][1, 3].max())])
