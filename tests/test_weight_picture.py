"""Expanded weights and their picture on a hand-built model whose weights have spatial structure."""
import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope.circuits.pictures import weight_picture


class Striped(nn.Module):
    """source: the identity on 3 channels; target: one 3x3 kernel reading channel 0 along its top
    row, channel 1 along its bottom row, and channel 2, negatively, along its middle row."""

    def __init__(self):
        super().__init__()
        self.source = nn.Conv2d(3, 3, 1, bias=False)
        self.target = nn.Conv2d(3, 1, 3, padding=1, bias=False)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.source.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            kernel = torch.zeros(1, 3, 3, 3)
            kernel[0, 0, 0, :] = 1.0
            kernel[0, 1, 2, :] = 2.0
            kernel[0, 2, 1, :] = -1.5
            self.target.weight.copy_(kernel)

    def forward(self, x):
        return self.head(self.target(self.source(x)).mean((2, 3)))


def test_expanded_weights_and_their_picture_show_the_stripes():
    network = Striped()
    model = ns.wrap(network, input_size=15)
    weights = ns.expanded_weights(model, to="target", from_layer="source")
    kernel = network.target.weight[0].detach()  # (C1, 3, 3)
    assert weights.weights.shape == (5, 5, 3, 1)  # the smallest window from 5 that holds the 3x3 kernel
    torch.testing.assert_close(weights.weights[1:4, 1:4, :, 0], kernel.permute(1, 2, 0))
    assert weights.weights[[0, 4]].abs().max() == 0 and weights.weights[:, [0, 4]].abs().max() == 0
    top = weights.top_inputs(0, 3)  # signed Frobenius norm over the window: 3 cells of 2, -1.5 and 1
    assert [c for c, _ in top] == [1, 2, 0]
    assert [v for _, v in top] == pytest.approx([2 * 3**0.5, -1.5 * 3**0.5, 3**0.5], rel=1e-5)
    picture = weight_picture(weights)  # (3, 5, 5) RGB: one NMF component per colour
    assert picture.shape == (3, 5, 5) and picture.min() >= 0 and picture.max() == 1
    ring = torch.ones(5, 5, dtype=torch.bool)
    ring[1:4, 1:4] = False
    assert picture[:, ring].max() < 1e-3  # no weight: black
    stripes = {"top (channel 0)": picture[:, 1, 1:4], "middle (channel 2, negative)": picture[:, 2, 1:4],
               "bottom (channel 1)": picture[:, 3, 1:4]}
    colours = {}
    for name, cells in stripes.items():  # (3 colours, 3 cells)
        dominant = cells.argmax(0)
        assert (dominant == dominant[0]).all(), name  # one colour along the whole stripe
        colour = int(dominant[0])
        others = torch.cat([cells[:colour], cells[colour + 1 :]])
        assert cells[colour].min() > 0.3 and others.max() < 0.05 * cells[colour].min(), (name, cells)
        torch.testing.assert_close(cells[colour], cells[colour][:1].expand(3))  # even along the stripe
        colours[name] = colour
    assert sorted(colours.values()) == [0, 1, 2], colours  # three stripes, three different colours
