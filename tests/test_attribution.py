"""Attribution to hidden layers on the real Lite0: completeness, all classes, two objects."""
import numpy as np
import pytest
import torch

import neuronscope as ns
from neuronscope.attribution.factor import class_factors
from neuronscope.attribution.hidden import attribute, attribute_all_classes
from neuronscope.data import preprocess
from neuronscope.factorization import ChannelReducer


def test_attribution_at_the_head_sums_to_the_logit_minus_its_bias(lite0):
    result = attribute(lite0, ["tabby", "espresso", 285], "chelsea", "act2")
    bias = lite0.module.classifier.bias[[281, 967, 285]]
    torch.testing.assert_close(result.total, result.scores - bias, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.spatial.flatten(1).sum(1), result.channel.sum(1), rtol=1e-5, atol=1e-5)
    assert result.spatial.shape == (3, 7, 7) and result.channel.shape == (3, 1280)


def test_all_classes_at_once_equals_one_class_at_a_time(lite0):
    x = lite0.prepare(ns.data.photo("coffee"))
    everything = attribute_all_classes(lite0, x, "blocks.6.0")
    some = attribute(lite0, [3, 281, 967, 504, 999], x, "blocks.6.0")
    assert everything.values.shape == (1000, 320, 7, 7)
    assert (everything.values[[3, 281, 967, 504, 999]] - some.values).abs().max() < 1e-5


def two_objects() -> torch.Tensor:
    halves = [preprocess.center_crop_resize(preprocess.to_tensor(ns.data.photo(n)), (224, 224)) for n in ("chelsea", "coffee")]
    return torch.cat(halves, dim=3)  # (1, 3, 224, 448): fed at its own size, never squashed


@pytest.mark.parametrize("layer", ["blocks.6.0", "act2"])
def test_two_objects_split_into_a_cat_factor_and_a_coffee_factor(lite0, layer):
    attribution = attribute_all_classes(lite0, two_objects(), layer)
    for seed in range(5):
        factors = class_factors(attribution, k=2, seed=seed)
        halves = factors.maps.shape[2] // 2
        found = set()
        for f in range(2):
            top = {index for index, _ in factors.top(f, 5)}
            left = factors.maps[f][:, :halves].sum() / factors.maps[f].sum()
            if top & {281, 282, 283, 284, 285} and left >= 0.8:
                found.add("cat")
            if top & {967, 968, 504} and left <= 0.2:
                found.add("coffee")
        assert found == {"cat", "coffee"}, (seed, [factors.top(f) for f in range(2)])


def test_channel_reducer_reshapes_and_handles_negatives():
    values = np.random.default_rng(0).normal(size=(4, 5, 6))
    reducer = ChannelReducer(3, negatives="split")
    out = reducer.fit_transform(values)
    assert out.shape == (4, 5, 3) and (out >= 0).all() and reducer.components.shape == (3, 12)
    errors = [_error(values, k) for k in (1, 3, 5)]
    assert errors[0] > errors[1] > errors[2]
    same = ChannelReducer(2, seed=4).fit_transform(values), ChannelReducer(2, seed=4).fit_transform(values)
    np.testing.assert_array_equal(*same)


def _error(values, k):
    reducer = ChannelReducer(k)
    reducer.fit_transform(values)
    return reducer.reconstruction_error(values)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: attribute(m, ["tabbby"], "chelsea", "act2"), "unknown class 'tabbby'"),
        (lambda m: attribute(m, ["tabby"], "chelsea", "logits"), "no spatial extent"),
        (lambda m: attribute(m, ["tabby"], "chelsea", "blocks.9"), "unknown layer 'blocks.9'"),
        (lambda m: attribute(m, [], "chelsea", "act2"), "no targets given"),
        (lambda m: ChannelReducer(8).fit_transform(np.ones((3, 4))), "8 components asked of only 4 channels"),
        (lambda m: ChannelReducer(2, method="KMeansish"), "unknown decomposition 'KMeansish'"),
    ],
)
def test_bad_input_gets_a_clear_error(lite0, make, message):
    with pytest.raises(ns.NeuronscopeError, match=message):
        make(lite0)


def test_attribution_depends_on_the_weights_above_the_layer(lite0):
    """Adebayo et al.'s model-randomization check: re-initialize everything above the layer."""
    import copy

    from scipy.stats import spearmanr

    torch.manual_seed(0)
    network = copy.deepcopy(lite0.module)
    for name, module in network.named_modules():
        if name.startswith(("blocks.5", "blocks.6", "conv_head", "bn2", "classifier")) and hasattr(module, "reset_parameters"):
            module.reset_parameters()
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
    randomized = ns.wrap(network, input_size=224, normalize="tf", labels="imagenet")
    original = attribute(lite0, ["Egyptian cat"], "chelsea", "blocks.4.2").spatial[0].flatten()
    shuffled = attribute(randomized, ["Egyptian cat"], "chelsea", "blocks.4.2").spatial[0].flatten()
    assert abs(spearmanr(original, shuffled).statistic) < 0.5
    assert abs(spearmanr(original.abs(), shuffled.abs()).statistic) < 0.5
