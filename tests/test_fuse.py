"""Folding BatchNorm into convolutions for fast renders: same outputs, original untouched."""
import torch
from torch import nn

import neuronscope as ns
from neuronscope.models.fuse import folded_copy


def layer_outputs(model, layers, x):
    with torch.no_grad(), ns.capture(model, layers) as cap:
        return cap(x)


def test_folded_copy_gives_the_same_layer_outputs_and_leaves_the_original_alone(lite0):
    state = {k: v.clone() for k, v in lite0.module.state_dict().items()}
    fast = folded_copy(lite0, keep=["blocks.4.1.conv_pw"])
    assert fast is not lite0 and fast.module is not lite0.module
    assert isinstance(dict(fast.module.named_modules())["blocks.3.1.bn1"], nn.Identity)
    assert isinstance(dict(fast.module.named_modules())["blocks.4.1.bn1"], nn.BatchNorm2d)  # its conv is kept
    layers = ["blocks.2.1", "blocks.3.1.bn1", "blocks.4.1.conv_pw", "bn2", "logits"]
    x = lite0.prepare(ns.data.photo("coffee"))
    expected, actual = layer_outputs(lite0, layers, x), layer_outputs(fast, layers, x)
    for name in layers:
        torch.testing.assert_close(actual[name], expected[name], atol=1e-3, rtol=1e-4)
    assert all(torch.equal(state[k], v) for k, v in lite0.module.state_dict().items())
    assert isinstance(lite0.module.blocks[3][1].bn1, nn.BatchNorm2d)


def test_a_model_without_foldable_pairs_is_returned_as_it_is():
    model = ns.wrap(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1)), input_size=16)
    assert folded_copy(model) is model
