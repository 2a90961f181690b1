"""Transformation robustness: one affine warp per step, independent per item, seeded."""
import math

import pytest
import torch

import neuronscope as ns
from neuronscope.featurevis.transforms import (
    LUCID,
    NONE,
    Draw,
    RandomAffine,
    TransformConfig,
    warp,
)


def test_identity_draw_is_the_identity():
    image = torch.rand(1, 3, 20, 24)
    out = warp(image, [Draw((0.0, 0.0), 1.0, 0.0, (0.0, 0.0))], (20, 24), fill=0.5)
    torch.testing.assert_close(out, image, atol=1e-5, rtol=0)
    assert RandomAffine(NONE, [0])(image) is image


def test_output_size_follows_lucids_pad_and_crops():
    assert LUCID.output_size((128, 128)) == (128 + 24 - 8 - 4,) * 2
    out = RandomAffine(LUCID, [0, 1])(torch.rand(2, 3, 128, 128))
    assert out.shape == (2, 3, 140, 140)


def test_padding_fill_and_integer_shifts_are_exact():
    image = torch.rand(1, 1, 6, 6)
    padded = warp(image, [Draw((0.0, 0.0), 1.0, 0.0, (0.0, 0.0))], (10, 10), fill=0.5)
    assert torch.allclose(padded[0, 0, 2:8, 2:8], image[0, 0], atol=1e-5)
    assert torch.allclose(padded[0, 0, :2], torch.tensor(0.5)) and torch.allclose(padded[0, 0, :, -2:], torch.tensor(0.5))
    shifted = warp(image, [Draw((1.0, 2.0), 1.0, 0.0, (0.0, 0.0))], (6, 6), fill=0.0)  # crop moved right 1, down 2
    assert torch.allclose(shifted[0, 0, :4, :5], image[0, 0, 2:, 1:], atol=1e-5)


def test_a_positive_angle_rotates_clockwise_as_displayed():
    # warp's convention: the source of output offset q is R(-angle) q in (x right, y down) pixel
    # coordinates, so the content turns by +angle with y pointing down: clockwise on screen
    image = torch.rand(1, 1, 8, 8)
    out = warp(image, [Draw((0.0, 0.0), 1.0, 90.0, (0.0, 0.0))], (8, 8), fill=0.0)
    torch.testing.assert_close(out[0, 0], torch.rot90(image[0, 0], k=-1), atol=1e-5, rtol=0)  # k=-1: clockwise
    assert not torch.allclose(out[0, 0], torch.rot90(image[0, 0], k=1), atol=1e-2)
    back = warp(image, [Draw((0.0, 0.0), 1.0, -90.0, (0.0, 0.0))], (8, 8), fill=0.0)
    torch.testing.assert_close(back[0, 0], torch.rot90(image[0, 0], k=1), atol=1e-5, rtol=0)
    marker = torch.zeros(1, 1, 9, 9)
    marker[0, 0, 0, 4] = 1.0  # top centre
    turned = warp(marker, [Draw((0.0, 0.0), 1.0, 90.0, (0.0, 0.0))], (9, 9), fill=0.0)[0, 0]
    assert divmod(int(turned.argmax()), 9) == (4, 8)  # ends at the right centre (row 4, column 8)
    small = warp(marker, [Draw((0.0, 0.0), 1.0, 10.0, (0.0, 0.0))], (9, 9), fill=0.0)[0, 0]
    columns = small.sum(0)
    assert (columns * torch.arange(9.0)).sum() / columns.sum() > 4.0  # 10 degrees: the top moves right


def test_scale_zooms_the_content():
    image = torch.zeros(1, 1, 40, 40)
    image[..., 15:25, 15:25] = 1.0  # a 10 px square
    big = warp(image, [Draw((0.0, 0.0), 2.0, 0.0, (0.0, 0.0))], (40, 40), fill=0.0)
    assert (big > 0.5).sum().item() == pytest.approx(400, rel=0.1)  # 20 x 20


def test_draws_come_from_the_lists_and_items_are_independent():
    config = TransformConfig(scales=(0.9, 1.1), angles=(-5.0, 5.0))
    draws = [RandomAffine(config, [0, 1, 2]).draw() for _ in range(1)][0]
    assert all(d.scale in (0.9, 1.1) and d.angle in (-5.0, 5.0) for d in draws)
    assert all(abs(s) <= config.jitter / 2 for d in draws for s in d.shift1)
    batch = RandomAffine(LUCID, [5, 9])
    single = RandomAffine(LUCID, [9])
    for _ in range(5):
        assert batch.draw()[1] == single.draw()[0]  # item 1 of a batch = item 0 alone, same seed
    again = RandomAffine(LUCID, [5, 9])
    first = [again.draw() for _ in range(3)]
    assert first[0] != first[1] or first[1] != first[2]  # re-sampled every step


def test_the_warps_gradient_is_its_exact_adjoint():
    """The warp is affine in the image (linear around the fill), so the gradient that reaches the
    image parameters is the adjoint of the warp: <T x, y> = <x, T^T y>, with T^T y from autograd
    taken at another image, and finite differences agree (gradcheck, float64)."""
    generator = torch.Generator().manual_seed(0)
    image, other = torch.rand(2, 2, 3, 16, 16, dtype=torch.float64, generator=generator)
    draws = RandomAffine(LUCID, [0, 1]).draw()  # Lucid's jitter, zoom and rotation, one per item
    size = LUCID.output_size((16, 16))

    def linear(x):  # the warp around its fill: linear in x
        return warp(x + LUCID.fill, draws, size, LUCID.fill) - LUCID.fill

    probe = torch.rand(2, 3, *size, dtype=torch.float64, generator=generator)
    at_other = other.clone().requires_grad_(True)
    (linear(at_other) * probe).sum().backward()
    forward = (linear(image) * probe).sum()
    torch.testing.assert_close((image * at_other.grad).sum(), forward, atol=1e-10, rtol=1e-10)
    assert at_other.grad.abs().sum() > 0
    small = torch.rand(2, 1, 6, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: warp(x, draws, (8, 8), LUCID.fill), (small,))
    # RandomAffine applies exactly these warps: the same seeds draw the same parameters
    leaf = image.clone().requires_grad_(True)
    RandomAffine(LUCID, [0, 1])(leaf).mul(probe).sum().backward()
    torch.testing.assert_close(leaf.grad, at_other.grad, atol=1e-12, rtol=0)


def test_invalid_config_is_a_clear_error():
    with pytest.raises(ns.NeuronscopeError, match="invalid transform config"):
        RandomAffine(TransformConfig(jitter=-1), [0])
    assert math.isclose(min(LUCID.scales), 0.9) and LUCID.angles.count(0.0) == 6
