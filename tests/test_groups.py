"""Neuron groups on the real Lite0."""
import numpy as np
import pytest

import neuronscope as ns
from neuronscope.attribution.groups import neuron_groups
from neuronscope.attribution.hidden import attribute


def test_groups_reconstruct_better_with_more_groups_and_are_deterministic(lite0):
    errors = [neuron_groups(lite0, "chelsea", "blocks.4.2", k).error for k in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2]
    a, b = neuron_groups(lite0, "chelsea", "blocks.4.2", 4, seed=3), neuron_groups(lite0, "chelsea", "blocks.4.2", 4, seed=3)
    np.testing.assert_array_equal(a.maps, b.maps)
    assert a.maps.shape == (4, 14, 14) and a.directions.shape == (4, 112) and (a.maps >= 0).all()
    peaks = [np.unravel_index(np.argmax(m), m.shape)[1] for m in a.maps]
    assert peaks == sorted(peaks)  # ordered left to right


def test_group_attributions_add_up_to_the_reconstructions_attribution(lite0):
    groups = neuron_groups(lite0, "chelsea", "blocks.6.0", 3)
    result = attribute(lite0, ["tabby", "espresso"], "chelsea", "blocks.6.0")
    per_group = groups.attribution(result.gradients)
    expected = np.einsum("chw,tchw->t", groups.reconstruction, result.gradients.numpy())
    np.testing.assert_allclose(per_group.sum(1), expected, rtol=1e-5, atol=1e-5)
    overlay = groups.overlay()
    assert overlay.shape == (3, 224, 224) and 0 <= overlay.min() and overlay.max() <= 1


def test_bad_group_requests_get_clear_errors(lite0):
    with pytest.raises(ns.NeuronscopeError, match="k must be in 1..112"):
        neuron_groups(lite0, "chelsea", "blocks.4.2", 200)
    with pytest.raises(ns.NeuronscopeError, match="no spatial extent"):
        neuron_groups(lite0, "chelsea", "logits", 2)
