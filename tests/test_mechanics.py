"""Neuron mechanics on the real Lite0: decompositions, contributions on a photo, firing cases, weight factors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuronscope as ns
from neuronscope.circuits.cases import contributions_to_channels, firing_cases, summed_contributions
from neuronscope.circuits.decompose import (
    MechanicsConfig,
    contributions,
    decompose,
    decomposition_sheet,
    previous_layer,
)
from neuronscope.circuits.expanded import expanded_weights
from neuronscope.circuits.factors import weight_factors
from neuronscope.data.photos import photo_crops
from neuronscope.featurevis.render import RenderConfig
from neuronscope.units import Unit

QUICK = MechanicsConfig(render=RenderConfig(steps=32, size=48, progress=False))


def test_contributions_on_a_photo_sum_to_the_linearized_activation(lite0):
    # blocks.3.1 -> blocks.3.2: 1x1 expand, ReLU6, 3x3 depthwise, ReLU6, 1x1 project, plus the residual
    c = contributions(lite0, "blocks.3.2:7", "chelsea", "blocks.3.1")
    total = c.bias + c.values.double().sum().item()
    assert abs(total - c.linearized) <= 1e-4 * abs(c.linearized)
    assert c.unit.startswith("blocks.3.2:7@") and c.values.shape == (80, 14, 14)
    window = c.window()
    assert window.shape == (3, 3, 80)  # the depthwise kernel's reach
    torch.testing.assert_close(window.sum(), c.values.sum(), rtol=1e-5, atol=1e-5)  # nothing outside the window
    assert not any("forward" in m.__dict__ for m in lite0.module.modules())  # the linearization is undone

    linear = contributions(lite0, "blocks.3.2.bn2:7", "chelsea", "blocks.3.2.act1")  # depthwise conv + BN only
    assert linear.linearized == pytest.approx(linear.actual, rel=1e-5)
    assert linear.bias + linear.values.sum().item() == pytest.approx(linear.actual, rel=1e-4)


def test_decompose_renders_each_window_cell_toward_its_own_weight_vector(lite0):
    d = decompose(lite0, "blocks.4.0:17", config=QUICK)
    assert d.source == "blocks.3.2" == previous_layer(lite0, "blocks.4.0")
    torch.testing.assert_close(d.vectors, expanded_weights(lite0, "blocks.4.0:17", "blocks.3.2").weights[..., 0])
    assert d.cells.shape == (25, 3, 48, 48) and d.grid().shape == (3, 240, 240)
    with torch.no_grad(), ns.capture(lite0, ["blocks.3.2"]) as cap:
        centre = cap(d.cells)["blocks.3.2"][:, :, 1, 1]
    vectors = d.vectors.reshape(25, -1)
    similarity = F.cosine_similarity(centre[:, None], vectors[None], dim=-1)  # (render, cell)
    strong = vectors.norm(dim=1) >= vectors.norm(dim=1).median()
    rank = (similarity > similarity.diag()[:, None]).sum(1)  # how many other cells' vectors each render matches better
    assert (rank[strong] <= 25 // 4).float().mean() >= 0.8
    target = decomposition_sheet(d)
    assert target.width > 3 * 192


def test_optimizing_the_earlier_layer_finds_its_positive_weights_on_a_linear_path(lite0):
    config = MechanicsConfig(method="optimize", render=RenderConfig(steps=2, size=32, progress=False))
    d = decompose(lite0, "blocks.3.2.bn2:7", "blocks.3.2.act1", config)  # act1 is post-ReLU6: H >= 0 is chosen
    weights = expanded_weights(lite0, "blocks.3.2.bn2:7", "blocks.3.2.act1").weights[..., 0]
    assert d.vectors.min() >= 0
    assert F.cosine_similarity(d.vectors.flatten(), weights.clamp(min=0).flatten(), dim=0) > 0.95


def test_firing_cases_factor_the_contributions_of_natural_crops(lite0):
    crops = [crop for _, crop in photo_crops(["chelsea", "coffee", "astronaut"], scales=(1.0, 0.5))]
    images = torch.cat([lite0.input(crop) for crop in crops])
    cases = [firing_cases(lite0, "blocks.4.0:17", images, "blocks.4.0.act2", k=k) for k in (1, 2, 4)]
    assert cases[0].error > cases[1].error > cases[2].error
    four = cases[2]
    assert four.directions.shape == (4, 480) and four.samples.shape == (30, 480)
    assert four.shares.sum() == pytest.approx(1.0, abs=0.1) and four.shares[0] == four.shares.max()
    again = firing_cases(lite0, "blocks.4.0:17", images, "blocks.4.0.act2", k=4)
    torch.testing.assert_close(again.directions, four.directions)
    # each sample is the unit's contribution vector where it fires most: the same numbers as for one image
    one = contributions(lite0, "blocks.4.0:17", images[:1], "blocks.4.0.act2")
    assert four.samples[0].sum().item() == pytest.approx(one.values.sum().item(), rel=1e-4)
    kmeans = firing_cases(lite0, "blocks.4.0:17", images, "blocks.4.0.act2", k=3, method="kmeans")
    assert kmeans.directions.shape == (3, 480) and kmeans.shares.sum() == pytest.approx(1.0)
    rendered = four.render(lite0, RenderConfig(steps=24, size=64, progress=False))
    with torch.no_grad(), ns.capture(lite0, ["blocks.4.0"]) as cap:
        on_cases = cap(rendered.images)["blocks.4.0"][:, 17, 1, 1]
        on_crops = cap(images)["blocks.4.0"][:, 17].flatten(1).max(1).values
    assert on_cases[0] > on_crops.max()  # the main case, visualized, drives the unit beyond every crop


def test_contributions_to_several_channels_share_one_pass_and_equal_each_alone(lite0):
    """The gallery's polysemanticity reads every unit of a layer from one shared forward pass;
    each unit's contribution vectors are those of its own ``summed_contributions``."""
    images = torch.cat([lite0.input(crop) for _, crop in photo_crops(["chelsea", "rocket"], scales=(1.0,))])
    together = contributions_to_channels(lite0, "blocks.4.1", [3, 40, 7], images, "blocks.4.0")
    assert together.shape == (3, len(images), lite0.layer("blocks.4.0").channels)
    for k, c in enumerate([3, 40, 7]):
        alone = summed_contributions(lite0, Unit("blocks.4.1", c), images, "blocks.4.0")
        torch.testing.assert_close(together[k], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1])


def test_weight_factors_of_a_family_share_input_directions(lite0):
    family = expanded_weights(lite0, "blocks.4.0", "blocks.3.2")
    chosen = [3, 17, 40, 41, 60, 77, 90, 101]
    factors = [weight_factors(family, k, chosen) for k in (1, 2, 4)]
    assert factors[0].error > factors[1].error > factors[2].error
    four = factors[2]
    assert four.units == chosen and four.factors.shape == (4, 80) and four.maps.shape == (8, 5, 5, 4)
    assert four.factors.min() >= 0
    approximation = torch.einsum("uhwk,kc->hwcu", four.maps, four.factors)
    actual = family.weights[..., chosen]
    assert (approximation - actual).norm() < actual.norm()  # the signed maps rebuild the weights
    torch.testing.assert_close(weight_factors(family, 4, chosen).maps, four.maps)


def test_weight_factors_recover_the_two_inputs_of_a_hand_built_family():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=False)
    excite, inhibit = torch.rand(6), torch.rand(6)
    where = torch.rand(5, 3, 3) > 0.5  # each unit: excited by one input direction here, inhibited by another elsewhere
    with torch.no_grad():
        conv.weight.copy_(torch.einsum("i,juv->jiuv", excite, torch.rand(5, 3, 3) * where)
                          - torch.einsum("i,juv->jiuv", inhibit, torch.rand(5, 3, 3) * ~where))
    model = ns.wrap(nn.Sequential(nn.Conv2d(6, 6, 1), conv).eval(), input_size=3, input_channels=6)
    factors = weight_factors(expanded_weights(model, "1", "0", window=3), k=2)
    assert factors.error < 1e-3
    found = F.cosine_similarity(factors.factors[:, None], torch.stack([excite, inhibit])[None], dim=-1)  # (factor, truth)
    assert found.max(0).values.min() > 0.99
    assert factors.maps.shape == (5, 3, 3, 2)


@pytest.mark.parametrize("call, message", [
    (lambda m: decompose(m, "blocks.3.1:2", "blocks.4.2", QUICK), "must come after 'blocks.4.2'"),
    (lambda m: decompose(m, "blocks.4.0:17", "blocks.3.x", QUICK), "did you mean"),
    (lambda m: decompose(m, "blocks.4.0:17@3,3", None, QUICK), "drop the '@x,y'"),
    (lambda m: decompose(m, "blocks.4.0:17", "blocks.3.2", MechanicsConfig(window=3)), "window 3 is too small"),
    (lambda m: MechanicsConfig(method="optimise"), "did you mean 'optimize'"),
    (lambda m: contributions(m, "blocks.3.2:1", "chelsea", "blocks.4.2"), "must come after 'blocks.4.2'"),
    (lambda m: firing_cases(m, "blocks.4.0:17", from_layer="blocks.3.2", method="pca"), "choose nmf or kmeans"),
    (lambda m: previous_layer(m, "act1"), "no curated layer runs before"),
])
def test_bad_requests_are_clear_errors(lite0, call, message):
    with pytest.raises(ns.NeuronscopeError, match=message.replace("(", r"\(")):
        call(lite0)
