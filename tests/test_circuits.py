"""Expanded weights: exact on hand-built models, and on the real Lite0 where the path is linear."""
import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope.circuits.expanded import expanded_weights


def wrapped(*layers, size):
    torch.manual_seed(0)
    return ns.wrap(nn.Sequential(*layers).eval(), input_size=size, input_channels=layers[0].in_channels)


def test_an_adjacent_conv_gives_its_kernel_unflipped():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = wrapped(nn.Conv2d(3, 3, 1), conv, size=3)  # layer "0" feeds the conv under test
    e = expanded_weights(model, "1", "0", window=3)
    torch.testing.assert_close(e.weights, conv.weight.detach().permute(2, 3, 1, 0), atol=1e-6, rtol=0)


def test_batchnorm_folds_into_the_kernel():
    conv, bn = nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.running_var.uniform_(0.5, 2)
    model = wrapped(nn.Conv2d(2, 2, 1), conv, bn, size=3)
    e = expanded_weights(model, "2", "0", window=3)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(e.weights, (conv.weight * scale.view(-1, 1, 1, 1)).detach().permute(2, 3, 1, 0), atol=1e-6, rtol=0)


def test_a_bottleneck_multiplies_out_and_two_3x3_convs_make_a_5x5():
    first, second = nn.Conv2d(3, 5, 1), nn.Conv2d(5, 2, 3, padding=1)
    model = wrapped(nn.Conv2d(3, 3, 1), first, nn.ReLU(), second, size=3)
    e = expanded_weights(model, "3", "0", window=3)
    expected = torch.einsum("jmuv,mi->uvij", second.weight, first.weight[:, :, 0, 0]).detach()
    torch.testing.assert_close(e.weights, expected, atol=1e-6, rtol=0)

    a, b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(3, 2, 3, padding=1)
    model = wrapped(nn.Conv2d(2, 2, 1), a, nn.ReLU(), b, size=5)
    e = expanded_weights(model, "3", "0", window=5)
    for i in range(2):
        for j in range(2):
            expected = sum(_full(a.weight[m, i].detach(), b.weight[j, m].detach()) for m in range(3))
            torch.testing.assert_close(e.weights[:, :, i, j], expected, atol=1e-6, rtol=0)


def _full(inner: torch.Tensor, outer: torch.Tensor) -> torch.Tensor:
    """Weight of input offset (dy, dx) on the output centre through two stacked 3x3 cross-correlations."""
    result = torch.zeros(5, 5)
    for u in range(3):
        for v in range(3):
            result[u : u + 3, v : v + 3] += outer[u, v] * inner
    return result


def test_expanded_weights_do_not_depend_on_the_input():
    model = wrapped(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1), size=5)
    first = expanded_weights(model, "2", "0", window=5)
    with torch.no_grad():
        model.module[0].bias.add_(3.0)  # changes the activations fed in, not the linearized map
    torch.testing.assert_close(expanded_weights(model, "2", "0", window=5).weights, first.weights, atol=1e-6, rtol=0)


def folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    return (conv.weight * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(-1, 1, 1, 1)).detach()


def test_lite0_expand_conv_and_depthwise_conv_are_read_exactly(lite0):
    block = lite0.module.blocks[3][2]
    e = expanded_weights(lite0, "blocks.3.2.bn1", "blocks.3.1", window=5)
    expected = folded(block.conv_pw, block.bn1)[:, :, 0, 0].T  # (C1, C2)
    torch.testing.assert_close(e.weights[2, 2], expected, atol=1e-5, rtol=0)
    assert e.weights[[0, 1, 3, 4]].abs().max() == 0 and e.weights[:, [0, 1, 3, 4]].abs().max() == 0
    d = expanded_weights(lite0, "blocks.3.2.bn2", "blocks.3.2.bn1", window=3)
    kernel = folded(block.conv_dw, block.bn2)[:, 0]  # (C, 3, 3)
    diagonal = d.weights[:, :, torch.arange(480), torch.arange(480)].permute(2, 0, 1)
    torch.testing.assert_close(diagonal, kernel, atol=1e-5, rtol=0)
    off = d.weights.clone()
    off[:, :, torch.arange(480), torch.arange(480)] = 0
    assert off.abs().max() == 0
    assert e.top_inputs(0, 3)[0][0] == int(expected[:, 0].abs().argmax())


def test_bad_requests_get_clear_errors(lite0):
    with pytest.raises(ns.NeuronscopeError, match="must come after 'blocks.4.2'"):
        expanded_weights(lite0, "blocks.3.1", "blocks.4.2")
    with pytest.raises(ns.NeuronscopeError, match="spatial extent"):
        expanded_weights(lite0, "logits", "blocks.4.2")


def test_the_sum_rule_holds_where_the_path_is_linear(lite0):
    """On a linear path, the unit's value on any patch = sum over the window of weights . activations + bias."""
    e = expanded_weights(lite0, "blocks.3.2.bn2:7", "blocks.3.2.bn1", window=3)
    patch = torch.randn(1, 480, 3, 3, generator=torch.Generator().manual_seed(1))
    block = lite0.module.blocks[3][2]
    with torch.no_grad():
        value = block.bn2(block.conv_dw(patch))[0, 7, 1, 1]  # centre of the 3x3 output
        bias = block.bn2.bias[7] - block.bn2.running_mean[7] * block.bn2.weight[7] / torch.sqrt(block.bn2.running_var[7] + block.bn2.eps)
    predicted = (e.weights[:, :, :, 0] * patch[0].permute(1, 2, 0)).sum() + bias
    torch.testing.assert_close(predicted, value, atol=1e-4, rtol=1e-4)


def test_a_window_smaller_than_the_kernels_is_a_clear_error(lite0):
    with pytest.raises(ns.NeuronscopeError, match="window 1 is too small.*at least 3"):
        expanded_weights(lite0, "blocks.3.2.bn2:7", "blocks.3.2.bn1", window=1)


def test_weight_pictures_have_the_window_shape(lite0):
    from neuronscope.circuits.pictures import spatial_position_images, weight_picture
    from neuronscope.featurevis.render import RenderConfig

    e = expanded_weights(lite0, "blocks.4.0.bn1:5", "blocks.3.2")  # a 1x1 path: weights only at the centre
    picture = weight_picture(e)
    assert picture.shape == (3, 5, 5) and picture.min() >= 0 and picture.max() == 1
    reads = e.weights[..., 0].norm(dim=-1) > 0
    assert reads.sum() == 1 and reads[2, 2]
    assert torch.equal(picture.sum(0) > 0, reads)  # the picture is dark exactly where the unit reads nothing
    tiled = spatial_position_images(lite0, e, config=RenderConfig(steps=2, size=32, progress=False))
    assert tiled.shape == (3, 5 * 32, 5 * 32)
    cells = tiled.view(3, 5, 32, 5, 32).permute(1, 3, 0, 2, 4)  # (row, column, 3, 32, 32)
    assert (cells[~reads] == 0.9).all()  # cells without weight fade to light grey entirely
    assert cells[2, 2].std() > 0.01  # the centre shows its feature visualization unfaded
    # through the 5x5 depthwise conv (a window of 7): the picture covers the kernel's 5x5 and no more,
    # brightest where the weights are strongest
    wide = expanded_weights(lite0, "blocks.4.0.bn2:5", "blocks.3.2", window=7)
    magnitude = wide.weights[..., 0].norm(dim=-1)
    brightness = weight_picture(wide).sum(0)
    assert (magnitude[1:-1, 1:-1] > 0).all() and torch.equal(brightness > 0, magnitude > 0)
    assert brightness.argmax() == magnitude.argmax()


def test_neuron_channel_and_cosine_views_each_win_their_own_objective(lite0):
    from neuronscope import objectives as obj
    from neuronscope.circuits.views import objective_views
    from neuronscope.featurevis.render import RenderConfig

    views = objective_views(lite0, "blocks.4.2:6", RenderConfig(steps=48, size=64, progress=False))
    assert views.labels == ["blocks.4.2:6 neuron", "blocks.4.2:6 channel", "blocks.4.2:6 direction x cos"]
    with torch.no_grad(), ns.capture(lite0, ["blocks.4.2"]) as cap:
        acts = cap(views.images)
    neuron = obj.neuron("blocks.4.2", 6)(acts)
    channel = obj.channel("blocks.4.2", 6)(acts)
    concentration = neuron / channel.clamp(min=1e-6)  # the neuron view puts its activation at the centre
    assert concentration.argmax() == 0 and channel[1] > channel[0]
    share = acts["blocks.4.2"][:, 6].flatten(1).norm(dim=1) / acts["blocks.4.2"].flatten(1).norm(dim=1)
    assert share.argmax() == 2  # the cosine view makes the channel the largest part of the activation vector


def test_optimizing_the_previous_layer_finds_the_expanded_weights_on_a_linear_path(lite0):
    from neuronscope.circuits.optimal import PatternConfig, optimal_input_pattern

    e = expanded_weights(lite0, "blocks.3.2.bn1:11", "blocks.3.1", window=3).weights[..., 0]  # (W, W, C1)
    weights = e.permute(2, 0, 1).flatten()
    found = optimal_input_pattern(lite0, "blocks.3.2.bn1:11", "blocks.3.1", window=3).flatten()
    assert torch.nn.functional.cosine_similarity(found, weights, dim=0) > 0.99
    positive = optimal_input_pattern(lite0, "blocks.3.2.bn1:11", "blocks.3.1", window=3, config=PatternConfig(nonnegative=True)).flatten()
    assert positive.min() >= 0
    assert torch.nn.functional.cosine_similarity(positive, weights.clamp(min=0), dim=0) > 0.95
    with pytest.raises(ns.NeuronscopeError, match="after 'blocks.3.1'"):
        optimal_input_pattern(lite0, "blocks.2.1:0", "blocks.3.1")
