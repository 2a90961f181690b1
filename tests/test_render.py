"""The render engine on the real EfficientNet-Lite0: classes, channels, batching, diversity, errors."""
import random

import numpy as np
import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope import objectives as obj
from neuronscope.featurevis.render import (
    DEFAULT_DIVERSITY_WEIGHT,
    RenderConfig,
    RenderWarning,
    diversity_layer,
    render,
    render_units,
)

CLASSES = [281, 967, 417, 948, 88, 980, 511, 327]  # tabby, espresso, balloon, Granny Smith, macaw, volcano, convertible, starfish
LAYERS = ["blocks.2.1", "blocks.3.1.bn1", "blocks.4.2", "blocks.5.1"]  # shallow to deep


def quiet(**changes) -> RenderConfig:
    return RenderConfig(progress=False, **changes)


def as_arrays(images: torch.Tensor) -> list[np.ndarray]:
    return [image.permute(1, 2, 0).numpy() for image in images]


@pytest.mark.slow
def test_class_visualizations_are_classified_as_their_class_by_this_model_and_another(lite0):
    """Rendered with the defaults (at the model's input size) and classified as a user opening
    the PNG would (``classify``'s centre crop): by Lite0, and by Lite1, which never saw them."""
    result = render_units(lite0, [f"logits:{c}" for c in CLASSES], quiet())
    assert result.labels[0] == "logits:281 tabby" and result.images.shape[-1] == 224
    for model, least in ((lite0, 7), (ns.load("efficientnet_lite1"), 6)):
        predictions = ns.classify(model, as_arrays(result.images), top=1)
        hits = [p[0].index == c for p, c in zip(predictions, CLASSES)]
        assert sum(hits) >= least, (model.name, [(c, p[0].label, round(p[0].probability, 3)) for p, c in zip(predictions, CLASSES)])


def natural_channel_means(model, layer: str, size: int) -> torch.Tensor:
    """(crops, channels): each channel's spatial mean on every bundled-photo crop at ``size``."""
    crops = torch.cat([model.prepare(crop, size) for _, crop in ns.data.photo_crops()])
    with torch.no_grad(), ns.capture(model, [layer]) as cap:
        return torch.cat([cap(batch)[layer].mean((2, 3)) for batch in crops.split(64)])


@pytest.mark.slow
def test_channel_visualizations_beat_every_natural_photo_crop(lite0):
    rng = random.Random(0)
    wins, compared, dead = 0, 0, []
    for layer in LAYERS:
        natural = natural_channel_means(lite0, layer, 128)
        channels = rng.sample(range(lite0.layer(layer).channels), 8)
        result = render_units(lite0, [f"{layer}:{c}" for c in channels], quiet())
        for c, value in zip(channels, result.values.tolist()):
            if natural[:, c].std() < 1e-6:  # constant on every input: a dead channel
                dead.append(f"{layer}:{c}")
                continue
            compared += 1
            wins += value - natural[:, c].max().item() > 0
    assert compared >= 28, f"too many dead channels: {dead}"
    assert wins >= 0.9 * compared, f"{wins}/{compared} beat the photos (dead, excluded: {dead})"


UNITS = ["blocks.3.1.bn1:5", "blocks.3.1.bn1:9", "blocks.4.2:0", "blocks.4.2:3@2,2",
         "blocks.2.1", "logits:tabby", "blocks.2.1:4", "blocks.5.0:7"]


def batched_and_alone(model, steps: int = 12):
    batched = render_units(model, UNITS, quiet(steps=steps, size=48, seed=3))
    alone = [render_units(model, [u], quiet(steps=steps, size=48, seed=3 + j)) for j, u in enumerate(UNITS)]
    return batched, torch.cat([a.images for a in alone]), torch.cat([a.values for a in alone])


@pytest.mark.slow
def test_a_batched_render_equals_units_rendered_one_by_one_exactly_in_float64():
    model = ns.load("efficientnet_lite0").to(dtype=torch.float64)
    batched, images, values = batched_and_alone(model)
    assert batched.images.dtype == torch.float64
    torch.testing.assert_close(batched.images, images, atol=1e-6, rtol=0)
    torch.testing.assert_close(batched.values, values, atol=1e-6, rtol=1e-6)


def test_a_batched_render_equals_units_rendered_one_by_one_up_to_float32_rounding(lite0):
    # oneDNN picks different convolution kernels for different batch sizes, so float32
    # activations differ by ~1e-5; Adam amplifies that where a gradient is near zero.
    batched, images, values = batched_and_alone(lite0)
    # The float64 test above shows the batch itself changes nothing; in float32 a rounding-level
    # difference can send an item down another path (here the tabby logit: 39.6 batched, 32.2 alone).
    per_image = (batched.images - images).abs().flatten(1).max(1).values
    assert (per_image < 0.01).sum() >= 6, per_image
    relative = (batched.values - values).abs() / values.abs()
    assert (relative < 0.01).sum() >= 6, relative
    assert (relative < 0.25).all(), relative


def test_same_seed_same_images_and_a_manifest_to_reproduce_them(lite0, tmp_path):
    config = quiet(steps=5, size=32, seed=11)
    first = render_units(lite0, ["blocks.2.1:3", "blocks.2.1:8"], config)
    second = render_units(lite0, ["blocks.2.1:3", "blocks.2.1:8"], config)
    torch.testing.assert_close(first.images, second.images, rtol=0, atol=0)
    paths = first.save(tmp_path)
    assert [p.name for p in paths] == ["000_blocks.2.1_3.png", "001_blocks.2.1_8.png"]
    manifest = __import__("json").loads((tmp_path / "manifest.json").read_text())
    assert manifest["model"] == "efficientnet_lite0" and manifest["seeds"] == [11, 12]
    assert manifest["config"]["steps"] == 5 and "torch" in manifest["versions"]
    assert first.history.shape == (5, 2) and first.timing["model_s"] <= first.timing["total_s"]


def spectral_distance(images: torch.Tensor) -> float:
    """Mean pairwise distance between the images' normalized log-amplitude spectra: how different
    their textures are (orientation, scale, colour contrast), regardless of where things sit."""
    grey = images.mean(1)
    amplitude = torch.fft.rfft2(grey - grey.mean((1, 2), keepdim=True)).abs().log1p().flatten(1)
    amplitude = amplitude / amplitude.norm(dim=1, keepdim=True)
    n = len(amplitude)
    return (torch.cdist(amplitude, amplitude).sum() / (n * (n - 1))).item()


def test_diversity_makes_the_samples_of_a_unit_more_different(lite0):
    unit, config = "blocks.3.1.bn1:5", quiet(steps=64, size=64, seed=0)
    plain = render_units(lite0, [unit], config, samples=4, diversity=0.0)
    diverse = render_units(lite0, [unit], config, samples=4, diversity=DEFAULT_DIVERSITY_WEIGHT)
    layer = diversity_layer(lite0, "blocks.3.1.bn1")
    similarity = obj.diversity(layer)
    with torch.no_grad(), ns.capture(lite0, [layer]) as cap:
        plain_similarity = similarity(cap(plain.images)).sum().item()
        diverse_similarity = similarity(cap(diverse.images)).sum().item()
    assert diverse_similarity < 0.5 * plain_similarity
    assert spectral_distance(diverse.images) > 1.2 * spectral_distance(plain.images)
    assert diverse.values.mean() > 0.5 * plain.values.mean()  # the unit is still strongly driven


def test_an_objective_with_no_gradient_warns_instead_of_silently_giving_grey():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight[1].zero_()
        net[0].bias[1] = -1.0  # channel 1 is dead: always 0 after the ReLU
    model = ns.wrap(net, input_size=32)
    with pytest.warns(RenderWarning, match="gradient is zero at the start"):
        result = render_units(model, ["1:0", "1:1"], quiet(steps=3, size=32))
    assert len(result.warnings) == 1 and result.warnings[0].startswith("1:1")


def test_render_accepts_any_objective_combination(lite0):
    objective = obj.channel("blocks.3.0", 2) - 0.01 * obj.total_variation() + 0.5 * obj.neuron("blocks.3.0", 2)
    result = render(lite0, objective, quiet(steps=8, size=40), batch=2)
    assert result.images.shape == (2, 3, 40, 40) and result.history[-1].mean() > result.history[0].mean()
    # the reported values are the combination's terms computed here on the final images
    images = result.images
    with torch.no_grad(), ns.capture(lite0, ["blocks.3.0"]) as cap:
        maps = cap(images)["blocks.3.0"][:, 2]
    height, width = maps.shape[-2:]
    variation = (images[..., 1:, :] - images[..., :-1, :]).abs().sum((1, 2, 3)) \
        + (images[..., :, 1:] - images[..., :, :-1]).abs().sum((1, 2, 3))
    expected = maps.mean((1, 2)) - 0.01 * variation + 0.5 * maps[:, height // 2, width // 2]
    torch.testing.assert_close(result.values, expected, atol=1e-4, rtol=1e-4)
    assert not torch.equal(images[0], images[1])  # two items, two seeds


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: render_units(m, ["blocks.4.9:1"], quiet()), "did you mean 'blocks.4.0'"),
        (lambda m: render_units(m, ["blocks.4.2:500"], quiet()), "channel 500 is out of range .* 0..111"),
        (lambda m: RenderConfig(size=8), "size must be an integer of at least 16"),
        (lambda m: RenderConfig(steps=0), "steps must be a positive integer"),
        (lambda m: RenderConfig(steps=-3), "steps must be a positive integer"),
        (lambda m: RenderConfig(param="cppn"), "unknown parameterization 'cppn'"),
        (lambda m: RenderConfig(transforms="strong"), "unknown transform preset 'strong': choose one of lucid, article, zoom, maco, none"),
        (lambda m: render_units(m, [], quiet()), "no units"),
    ],
)
def test_bad_input_gets_a_clear_error(lite0, make, message):
    with pytest.raises(ns.NeuronscopeError, match=message):
        make(lite0)


def test_a_model_that_only_runs_at_its_own_size_renders_at_any_size():
    """Plumbing (random weights): a flattening head runs at 32 px only; the capture resizes the
    16 px render (and its jittered crops) to 32 px instead of failing deep inside torch."""
    fixed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 5))
    model = ns.wrap(fixed, input_size=32)
    assert model.fixed_input_size and not ns.load("efficientnet_lite0").fixed_input_size
    result = render_units(model, ["logits:1"], quiet(steps=2, size=16))
    assert tuple(result.images.shape) == (1, 3, 16, 16) and torch.isfinite(result.values).all()
