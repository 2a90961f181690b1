"""Image parameterizations: range, shape, seeding, spectrum, colour, and that they can fit a photo."""
import pytest
import torch
import torch.nn.functional as F

import neuronscope as ns
from neuronscope.featurevis.param import FourierImage, PixelImage, make_param
from neuronscope.featurevis.param.color import COLOR_MATRIX, to_valid_rgb
from neuronscope.featurevis.param.fourier import frequency_scale


@pytest.mark.parametrize("size", [(16, 16), (15, 22), (9, 8)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shapes_and_range_for_any_size_and_channel_count(size, channels):
    for param in (FourierImage(size, [0, 1], channels), PixelImage(size, [0, 1], channels)):
        images = param()
        assert images.shape == (2, channels, *size) and images.dtype == torch.float32
        assert 0 < images.min() and images.max() < 1


def test_each_item_comes_from_its_own_seed():
    pair, alone = FourierImage((12, 12), [4, 8]), FourierImage((12, 12), [8])
    torch.testing.assert_close(pair()[1:], alone())
    assert not torch.allclose(pair()[0], pair()[1])


def test_fourier_init_is_near_grey_and_spectrum_falls_as_one_over_f():
    assert (FourierImage((64, 64), [0])() - 0.5).abs().max() < 0.05
    big = FourierImage((128, 128), [0], channels=1, decorrelate=False)
    with torch.no_grad():
        big.spectrum.normal_(0, 1.0)
        spectrum = torch.view_as_complex(big.spectrum) * big.scale
        u = torch.fft.irfft2(spectrum, s=(128, 128), norm="ortho")
    power = torch.fft.rfft2(u[0, 0]).abs() ** 2
    radius = (1.0 / frequency_scale((128, 128))).flatten()
    keep = (radius > 0.02) & (radius < 0.4)
    slope = torch.linalg.lstsq(torch.stack([radius[keep].log(), torch.ones(int(keep.sum()))], 1),
                               power.flatten()[keep].log().unsqueeze(1)).solution[0].item()
    assert slope == pytest.approx(-2.0, abs=0.3)


def test_colour_matrix_is_lucids_and_its_first_column_is_luminance():
    expected = torch.tensor([[0.5628, 0.1948, 0.0433], [0.5845, 0.0, -0.1082], [0.5845, -0.1948, 0.0649]])
    torch.testing.assert_close(COLOR_MATRIX, expected, atol=1e-4, rtol=0)
    assert torch.linalg.det(COLOR_MATRIX).abs() > 1e-3
    grey = to_valid_rgb(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    assert (grey.max() - grey.min()).item() < 0.01


def test_clip_gradient_blocks_only_outward_steps():
    z = torch.full((1, 1, 1, 1), 1.0, requires_grad=True)  # 2 * (0.5 + 1.0) - 1 = 2: saturated high
    to_valid_rgb(z, decorrelate=False, squash="clip").backward(torch.full_like(z, -1.0))  # descent would raise z
    assert z.grad.item() == 0.0
    z.grad = None
    to_valid_rgb(z, decorrelate=False, squash="clip").backward(torch.full_like(z, 1.0))  # descent lowers z: inward
    assert z.grad.item() > 0


@pytest.mark.parametrize("kind", ["fourier", "pixel"])
def test_a_parameterization_can_fit_a_photo(kind):
    photo = torch.from_numpy(ns.data.photo("chelsea")).permute(2, 0, 1).unsqueeze(0)
    target = F.interpolate(photo, size=(112, 112), mode="bilinear", antialias=True, align_corners=False)
    param = make_param(kind, (112, 112), [0])
    optimizer = torch.optim.Adam(param.parameters(), lr=0.05)
    for _ in range(1000):
        optimizer.zero_grad()
        loss = (param() - target).pow(2).sum()
        loss.backward()
        optimizer.step()
        error = (param() - target).abs().mean().item()
        if error < 0.01:
            break
    assert error < 0.01


def test_unknown_parameterization_lists_the_choices():
    with pytest.raises(ns.NeuronscopeError, match="choose one of fourier, pixel, maco"):
        make_param("cppn", (8, 8), [0])


@pytest.mark.parametrize("kind", ["fourier", "pixel"])
def test_unset_options_mean_the_defaults_and_set_ones_are_used(kind):
    default = make_param(kind, (16, 16), [3])
    assert (default.decorrelate, default.squash) == (True, "sigmoid")
    explicit = make_param(kind, (16, 16), [3], decorrelate=True, squash="sigmoid")
    torch.testing.assert_close(default(), explicit(), rtol=0, atol=0)
    other = make_param(kind, (16, 16), [3], decorrelate=False, squash="clip")
    assert (other.decorrelate, other.squash) == (False, "clip")
    assert not torch.allclose(other(), default())


@pytest.mark.parametrize("options, named", [({"squash": "clip"}, "squash"), ({"decorrelate": False}, "decorrelate"),
                                            ({"decorrelate": True}, "decorrelate"), ({"squash": "sigmoid"}, "squash")])
def test_maco_rejects_options_it_does_not_have(options, named):
    make_param("maco", (16, 16), [0])  # unset: fine
    with pytest.raises(ns.NeuronscopeError, match=f"maco parameterization has no {named} option"):
        make_param("maco", (16, 16), [0], **options)
