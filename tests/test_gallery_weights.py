"""The gallery's weight strips on the real Lite0: strengths are the expanded weights, shares put
layer pairs whose raw weights differ ten-thousandfold on one scale."""
import pytest
import torch

from neuronscope.circuits.expanded import expanded_weights
from neuronscope.gallery.layer_views import NEIGHBOURS, neighbours


def folded(conv, bn) -> torch.Tensor:
    return (conv.weight * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(-1, 1, 1, 1)).detach()


def test_adjacent_layers_list_the_folded_kernel_and_each_entrys_share_of_it(lite0):
    block = lite0.module.blocks[3][2]
    kernel = folded(block.conv_pwl, block.bn3)[:, :, 0, 0].T.double()  # (480 inputs, 80 outputs): a 1x1 conv
    inputs, outputs, window = neighbours(lite0, "blocks.3.2.act2", "blocks.3.2.bn3")
    assert window == 14 and len(inputs) == 80 and len(outputs) == 480
    energy = kernel.pow(2)
    for j in (0, 17, 79):
        listed = inputs[str(j)]
        assert [i for i, _, _ in listed] == kernel[:, j].abs().argsort(descending=True)[:NEIGHBOURS].tolist()
        for i, strength, share in listed:
            assert strength == pytest.approx(float(kernel[i, j]), abs=1e-5)  # one tap: its norm, its sign
            assert share == pytest.approx(float(energy[i, j] / energy[:, j].sum()), rel=1e-4)
    for i in (0, 479):
        listed = outputs[str(i)]
        assert [j for j, _, _ in listed] == kernel[i].abs().argsort(descending=True)[:NEIGHBOURS].tolist()
        for j, strength, share in listed:
            assert strength == pytest.approx(float(kernel[i, j]), abs=1e-5)
            assert share == pytest.approx(float(energy[i, j] / energy[i].sum()), rel=1e-4)


def test_distant_raw_weights_are_thousands_of_times_larger_but_their_shares_compare(lite0):
    """blocks.4.2 -> blocks.5.3 runs through four blocks whose ReLU6 units are mostly off on real
    photos; linearized, all of them pass, and the raw weights reach 1e4 where the layer pair before
    has about 2. Shares of the two pairs lie in the same range."""
    raw, shares = {}, {}
    for earlier, later in (("blocks.3.2", "blocks.4.2"), ("blocks.4.2", "blocks.5.3")):
        inputs, outputs, window = neighbours(lite0, earlier, later)
        assert window == 14
        for listing in (*inputs.values(), *outputs.values()):
            share = [s for _, _, s in listing]
            assert all(0 < s <= 1 for s in share) and share == sorted(share, reverse=True) and sum(share) <= 1 + 1e-6
            strength = [abs(v) for _, v, _ in listing]
            assert strength == sorted(strength, reverse=True)
        raw[later] = torch.tensor([listing[0][1] for listing in inputs.values()]).abs().median()
        shares[later] = torch.tensor([listing[0][2] for listing in inputs.values()]).median()
    assert 1 < raw["blocks.4.2"] < 10 and raw["blocks.5.3"] > 1000 * raw["blocks.4.2"]
    assert 0.02 < shares["blocks.4.2"] < 0.3 and 0.02 < shares["blocks.5.3"] < 0.3
    # the shares are the strips' squared window norms over the unit's whole weights, all channels
    weights = expanded_weights(lite0, "blocks.5.3:7", "blocks.4.2", window=14, clip=True).weights[..., 0]
    channel, strength, share = inputs["7"][0]  # blocks.4.2 -> blocks.5.3, the last pair above
    assert abs(strength) == pytest.approx(float(weights[:, :, channel].norm()), rel=1e-4)
    assert share == pytest.approx(float(weights[:, :, channel].pow(2).sum() / weights.pow(2).sum()), rel=1e-3)
