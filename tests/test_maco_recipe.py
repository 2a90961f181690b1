"""MaCo as its authors run it: random crops of a large image with noise, several views per step,
NAdam, and the transparency map (where the image mattered to the objective)."""
import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope.cli.main import main
from neuronscope.examples.receptive import receptive_field
from neuronscope.featurevis import objectives as obj
from neuronscope.featurevis.loop import LoopConfig, optimize
from neuronscope.featurevis.param import make_param
from neuronscope.featurevis.render import RenderConfig
from neuronscope.featurevis.transforms import MACO, RandomAffine, TransformConfig


def coordinates(size: int) -> torch.Tensor:
    """(1, 3, size, size): x / size, y / size and a constant, at pixel centres."""
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    return torch.stack([ramp.expand(size, size), ramp[:, None].expand(size, size), torch.ones(size, size)])[None]


def test_crops_lie_inside_the_image_have_the_drawn_side_and_are_shown_at_the_output_size():
    config = TransformConfig(crop=(0.2, 0.25), centre_std=0.3, output=40)
    transform = RandomAffine(config, seeds=list(range(16)))
    image = coordinates(200).expand(16, -1, -1, -1)
    crops = transform(image)
    assert crops.shape == (16, 3, 40, 40)
    for crop in crops:
        for axis in (0, 1):
            low, high = float(crop[axis].min()), float(crop[axis].max())
            assert 0.0 <= low and high <= 1.0  # inside, even with centres drawn far out
            assert 0.2 - 0.02 <= high - low <= 0.25  # the side of one crop, less one output pixel


def test_noise_has_the_authors_strength_and_each_item_its_own_seed():
    config = TransformConfig(crop=(1.0, 1.0), centre_std=0.0, output=64, noise=0.05)
    flat = torch.full((2, 3, 64, 64), 0.5)
    both = RandomAffine(config, seeds=[3, 4])(flat)
    alone = RandomAffine(config, seeds=[4])(flat[:1])
    torch.testing.assert_close(both[1:], alone)
    assert not torch.allclose(both[0], both[1])
    # Gaussian std 0.05 plus uniform of width 0.05: std sqrt(0.05^2 + 0.05^2 / 12)
    assert float((both - 0.5).std()) == pytest.approx((0.05**2 + 0.05**2 / 12) ** 0.5, rel=0.03)


def test_unknown_optimizer_and_bad_views_or_crops_are_clear_errors():
    with pytest.raises(ns.NeuronscopeError, match="unknown optimizer 'sgd': choose one of adam, nadam"):
        RenderConfig(optimizer="sgd")
    with pytest.raises(ns.NeuronscopeError, match="views must be a positive integer"):
        RenderConfig(views=0)
    with pytest.raises(ns.NeuronscopeError, match="crop must be two fractions"):
        RandomAffine(TransformConfig(crop=(0.5, 1.5)), seeds=[0])


def test_default_render_settings_keep_their_fingerprints():
    # settings added for the MaCo recipe only enter the fingerprint when used, so pictures made
    # before them (gallery folders, icon caches) are still recognised
    assert not {"optimizer", "views", "transparency"} & set(RenderConfig().pixel_settings())
    assert RenderConfig(optimizer="nadam", views=6).pixel_settings()["views"] == 6


@pytest.fixture(scope="module")
def tiny():  # random weights: plumbing only
    torch.manual_seed(0)
    return ns.wrap(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)), input_size=32)


def test_identical_views_sum_to_one_view(tiny):
    # without random transforms every view is the same, and their gradients, each weighted
    # 1 / views, add up to exactly one view's: the same images
    runs = []
    for views in (1, 2):
        param = make_param("fourier", (32, 32), seeds=[0, 1])
        config = LoopConfig(steps=10, transforms="none", fast=False, views=views)
        runs.append(optimize(tiny, obj.channel("2", 1), param, config))
    assert torch.equal(runs[0].images, runs[1].images)
    torch.testing.assert_close(runs[0].history, runs[1].history)


def test_the_authors_recipe_resolves_crops_to_the_models_input_side(lite0):
    config = RenderConfig(param="maco", optimizer="nadam", transforms="maco", views=6, size=1280)
    sized = config.for_view(lite0, whole=True)
    assert sized.transforms.crop == MACO.crop and sized.transforms.output == 224 and sized.views == 6


def test_transparency_lies_inside_the_neurons_receptive_field(lite0):
    # without transforms, a neuron's gradient reaches only the pixels it sees
    layer, size = "blocks.1.1", 96
    config = RenderConfig(steps=6, size=size, transforms="none", transparency=True, progress=False)
    result = ns.render_units(lite0, [f"{layer}:3@5,7", f"{layer}:3@20,3"], config)
    assert result.alpha.shape == (2, 1, size, size)
    assert float(result.alpha.amax()) == 1.0 and float(result.alpha.amin()) == 0.0
    field = max(receptive_field(lite0, layer))
    stride = size // 24  # the layer is 24 x 24 at 96 px
    for alpha, (x, y) in zip(result.alpha, [(5, 7), (20, 3)]):
        rows, cols = torch.nonzero(alpha[0] > 0, as_tuple=True)
        assert int(rows.max() - rows.min()) + 1 <= field and int(cols.max() - cols.min()) + 1 <= field
        centre = (float(cols.float().mean()) / stride, float(rows.float().mean()) / stride)
        assert centre == pytest.approx((x + 0.5, y + 0.5), abs=1.0)


def test_render_cli_writes_transparency_maps_beside_the_images(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["render", "efficientnet_lite0", "blocks.2.1:1", "--steps", "4", "--size", "64", "--param", "maco",
                 "--optimizer", "nadam", "--views", "2", "--transforms", "maco", "--transparency", "--no-progress",
                 "-o", str(out)])
    assert code == 0
    alphas = sorted(p.name for p in out.glob("*_alpha.png"))
    assert alphas == ["000_blocks.2.1_1_alpha.png"]
    manifest = (out / "manifest.json").read_text()
    assert '"alpha_files"' in manifest and '"optimizer": "nadam"' in manifest and '"views": 2' in manifest


def test_crops_read_only_what_they_cover_and_give_the_full_warps_pixels():
    from neuronscope.featurevis.transforms import crop_warp, warp

    torch.manual_seed(0)
    images = torch.rand(6, 3, 300, 260, requires_grad=True)
    config = TransformConfig(crop=(0.2, 0.9), centre_std=0.4, output=64)
    draws = RandomAffine(config, seeds=list(range(6))).draw((300, 260))
    full, cropped = warp(images, draws, (64, 64), 0.5), crop_warp(images, draws, (64, 64), 0.5)
    torch.testing.assert_close(cropped, full, atol=1e-4, rtol=0)  # coordinates rounded differently
    (grad_full,) = torch.autograd.grad(full.sum(), images)
    (grad_cropped,) = torch.autograd.grad(cropped.sum(), images)
    torch.testing.assert_close(grad_cropped, grad_full, atol=1e-4, rtol=0)
