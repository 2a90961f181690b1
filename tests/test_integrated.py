"""Integrated gradients from hidden layers on the real Lite0: completeness at every depth, the two
implementations agree, and the class ranking holds below the head where one-step attribution fails."""
import pytest
import torch

from neuronscope.attribution.hidden import attribute_all_classes, logit_agreement
from neuronscope.attribution.integrated import (
    class_support,
    integrated_attribute,
    path_fractions,
)
from neuronscope.errors import NeuronscopeError

TABBY = 281


@pytest.mark.parametrize(("layer", "steps"), [pytest.param("blocks.4.2", 2048, marks=pytest.mark.slow), ("blocks.5.3", 1024),
                                               ("act2", 16)])
def test_completeness_to_a_thousandth_at_every_depth(lite0, layer, steps):
    """The attribution summed over the layer equals the logit's change along the path (the top
    class of the photo, at the model's input size); the midpoint rule's error falls as 1/steps."""
    support = class_support(lite0, "chelsea", layer, steps=steps)
    top = int(support.logits.argmax())
    change = support.logits[top] - support.baseline_logits[top]
    assert support.labels[top] in {"tabby", "tiger cat", "Egyptian cat"}
    error = float((support.total[top] - change).abs() / change.abs())
    assert error < 1e-3, f"{layer}: relative completeness error {error:.2e} with {steps} steps"


def test_reverse_and_forward_mode_give_the_same_attribution(lite0):
    """Per-neuron maps (reverse mode) summed per channel equal the forward-mode class support."""
    channels = [0, 7, 33]
    maps = integrated_attribute(lite0, ["espresso", "tabby"], "coffee", "blocks.5.3", steps=16)
    support = class_support(lite0, "coffee", "blocks.5.3", channels, steps=16)
    rows = support.per_channel[[967, TABBY]]
    torch.testing.assert_close(maps.channel[:, channels], rows, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(maps.total, support.total[[967, TABBY]], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(maps.scores, support.logits[[967, TABBY]], rtol=1e-4, atol=1e-4)
    alone = class_support(lite0, "coffee", "blocks.5.3", channels, steps=16, total=False)  # the gallery's cheaper call
    torch.testing.assert_close(alone.per_channel, support.per_channel, rtol=1e-5, atol=1e-6)
    assert alone.total is None
    assert maps.method.startswith("integrated gradients") and maps.values.shape == (2, 192, 7, 7)


@pytest.mark.slow
def test_integrated_gradients_rank_the_classes_where_one_step_attribution_does_not(lite0):
    """At blocks.4.2 summed one-step attribution barely correlates with the logits over the 1000
    classes; integrated gradients do (their sums are the logits' changes from the baseline)."""
    one_step = logit_agreement(attribute_all_classes(lite0, "chelsea", "blocks.4.2"))
    integrated = class_support(lite0, "chelsea", "blocks.4.2", steps=32).agreement()
    assert one_step < 0.5 < 0.8 < integrated, (one_step, integrated)


def test_bad_input_gets_a_clear_error(lite0):
    with pytest.raises(NeuronscopeError, match="steps must be a positive integer"):
        path_fractions(0)
    with pytest.raises(NeuronscopeError, match="out of range"):
        class_support(lite0, "chelsea", "blocks.5.3", [500])
    with pytest.raises(NeuronscopeError, match="did you mean"):
        integrated_attribute(lite0, ["tabby"], "chelsea", "blocks.5.33")
