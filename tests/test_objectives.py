"""Objectives: exact values on small tensors, the algebra, and that nothing is mutated."""
import pytest
import torch

import neuronscope as ns
from neuronscope import objectives as obj


@pytest.fixture
def acts():
    torch.manual_seed(0)
    return {"conv": torch.randn(3, 4, 5, 6), "logits": torch.randn(3, 10), "input": torch.rand(3, 3, 8, 8)}


def test_channel_neuron_layer_and_class_values(acts):
    a = acts["conv"]
    torch.testing.assert_close(obj.channel("conv", 2)(acts), a[:, 2].mean((1, 2)))
    torch.testing.assert_close(obj.neuron("conv", 1)(acts), a[:, 1, 2, 3])  # centre: row H//2=2, column W//2=3
    torch.testing.assert_close(obj.neuron("conv", 1, x=5, y=0)(acts), a[:, 1, 0, 5])
    torch.testing.assert_close(obj.layer("conv")(acts), a.pow(2).mean((1, 2, 3)))
    torch.testing.assert_close(obj.class_logit(7)(acts), acts["logits"][:, 7])
    torch.testing.assert_close(obj.class_probability(7)(acts), acts["logits"].softmax(1)[:, 7])


def test_batch_index_selects_one_item(acts):
    values = obj.channel("conv", 2, batch=1)(acts)
    assert values[0] == 0 and values[2] == 0 and values[1] == acts["conv"][1, 2].mean()
    many = obj.channels("conv", [3, 0, 1])(acts)
    expected = torch.stack([acts["conv"][i, c].mean() for i, c in enumerate([3, 0, 1])])
    torch.testing.assert_close(many, expected)


def test_direction_with_a_basis_vector_equals_channel_and_neuron(acts):
    e2 = torch.zeros(4)
    e2[2] = 1.0
    torch.testing.assert_close(obj.direction("conv", e2)(acts), obj.channel("conv", 2)(acts))
    torch.testing.assert_close(obj.direction_neuron("conv", e2)(acts), obj.neuron("conv", 2)(acts))


def test_cosine_power_uses_the_floor():
    v = torch.tensor([1.0, 0.0])
    act = torch.tensor([[[[-2.0]], [[0.0]]]]).reshape(1, 2, 1, 1)  # opposite to v: dot -2, cos -1
    value = obj.direction("a", v, cosine_power=2)({"a": act})
    torch.testing.assert_close(value, torch.tensor([-2.0 * 0.1**2]))
    aligned = obj.direction("a", v, cosine_power=1)({"a": -act})
    torch.testing.assert_close(aligned, torch.tensor([2.0 * (2.0 / ((1e-4 + 2.0) * (1e-4 + 1.0)))]))


def test_algebra_builds_new_objectives_and_never_mutates(acts):
    a, b = obj.channel("conv", 0), obj.class_logit(3)
    saved = {k: v.clone() for k, v in acts.items()}
    va, vb = a(acts).clone(), b(acts).clone()  # the operands' values before any combination is built
    assert not torch.allclose(va, vb)
    combos = {
        "0.2a+0.8b": (0.2 * a + 0.8 * b, 0.2 * va + 0.8 * vb),
        "a-b": (a - b, va - vb),
        "a/4": (a / 4, va / 4),
        "a*b": (a * b, va * vb),
        "-a": (-a, -va),
        "a+1.5": (a + 1.5, va + 1.5),
        "2-b": (2 - b, 2 - vb),
        "sum": (sum([a, b, a]), 2 * va + vb),
    }
    for label, (combined, expected) in combos.items():
        assert combined is not a and combined is not b, label
        torch.testing.assert_close(combined(acts), expected, msg=label)
    # evaluated again after every combination was built and evaluated: the same values, bit for bit
    torch.testing.assert_close(a(acts), va, rtol=0, atol=0)
    torch.testing.assert_close(b(acts), vb, rtol=0, atol=0)
    assert (a.layers, a.name, b.layers, b.name) == (("conv",), obj.channel("conv", 0).name, ("logits",),
                                                    obj.class_logit(3).name)
    for key, value in saved.items():  # no objective wrote into the activations it read
        torch.testing.assert_close(acts[key], value, rtol=0, atol=0)
    assert combos["0.2a+0.8b"][0].layers == ("conv", "logits")
    with pytest.raises(ns.NeuronscopeError, match="divided by a non-zero number"):
        a / 0


def test_diversity_of_identical_and_orthogonal_items():
    same = torch.rand(1, 4, 3, 3).repeat(3, 1, 1, 1)
    assert obj.diversity("a")({"a": same}).sum().item() == pytest.approx(2.0, abs=1e-5)  # B - 1
    orthogonal = torch.zeros(2, 4, 2, 2)
    orthogonal[0, :2] = 1.0
    orthogonal[1, 2:] = 1.0
    assert obj.diversity("a")({"a": orthogonal}).sum().item() == pytest.approx(0.0, abs=1e-6)
    groups = obj.diversity("a", items=[0, 1])({"a": same})
    assert groups[2] == 0 and groups[0] == pytest.approx(0.5, abs=1e-6)


def test_penalties_on_the_input(acts):
    x = acts["input"]
    torch.testing.assert_close(obj.l1()(acts), (x - 0.5).abs().flatten(1).sum(1))
    tv = (x[:, :, 1:] - x[:, :, :-1]).abs().flatten(1).sum(1) + (x[..., 1:] - x[..., :-1]).abs().flatten(1).sum(1)
    torch.testing.assert_close(obj.total_variation()(acts), tv)
    flat = {"input": torch.full((1, 3, 5, 5), 0.3)}
    assert obj.blur_penalty()(flat).item() == pytest.approx(0.0, abs=1e-10)  # a flat image is its own blur


def test_interpolation_weights_move_from_a_to_b(acts):
    values = obj.channel_interpolate("conv", 0, "conv", 1)(acts)
    a, b = acts["conv"][:, 0].mean((1, 2)), acts["conv"][:, 1].mean((1, 2))
    torch.testing.assert_close(values, torch.stack([a[0], 0.5 * a[1] + 0.5 * b[1], b[2]]))


def test_bad_channel_is_a_clear_error(acts):
    with pytest.raises(ns.NeuronscopeError, match="channels 0..3"):
        obj.channel("conv", 9)(acts)
    with pytest.raises(ns.NeuronscopeError, match="direction has 3 entries but layer 'conv' has 4 channels"):
        obj.direction("conv", torch.ones(3))(acts)
