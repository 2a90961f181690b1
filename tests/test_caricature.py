"""Caricatures on the real EfficientNet-Lite0 and bundled photos."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neuronscope as ns
from neuronscope import objectives as obj
from neuronscope.featurevis.caricature import (
    CaricatureConfig,
    attributive_caricature,
    caricature,
    caricature_objective,
    normalized_attribution,
)
from neuronscope.featurevis.transforms import LUCID, RandomAffine
from neuronscope.overrides import linear_forward

PHOTOS = ["chelsea", "coffee", "rocket", "china", "motorcycle"]
MID_LAYERS = ["blocks.3.1", "blocks.4.2"]


def quiet(**changes) -> CaricatureConfig:
    return CaricatureConfig(progress=False, **changes)


def activations(model, images, layer):
    with torch.no_grad(), ns.capture(model, [layer]) as cap:
        return cap(images)[layer]


def test_reference_and_caricatures_get_the_identical_transform_every_step():
    transform = RandomAffine(LUCID, [7, 8, 9], shared=True)
    image = torch.rand(1, 3, 32, 32)
    for _ in range(10):
        draws = transform.draw()
        assert draws[0] == draws[1] == draws[2]
        warped = transform(image.repeat(3, 1, 1, 1))
        assert torch.equal(warped[0], warped[1]) and torch.equal(warped[0], warped[2])
    independent = RandomAffine(LUCID, [7, 8, 9]).draw()
    assert len({(d.scale, d.angle, d.shift1) for d in independent}) > 1


def test_the_objective_is_basis_free_and_a_channel_objective_is_not(lite0):
    layer = "blocks.4.2"
    images = torch.stack([lite0.prepare(ns.data.photo(name), 96)[0] for name in ("chelsea", "coffee")])
    acts = activations(lite0, images, layer)
    q, _ = torch.linalg.qr(torch.randn(acts.shape[1], acts.shape[1], generator=torch.Generator().manual_seed(0)))
    rotated = torch.einsum("dc,bchw->bdhw", q, acts)  # the layer read in another orthonormal basis
    for p in (0.0, 1.0, 2.0):
        for mode in ("true", "lucid"):
            before = caricature_objective(acts[1], acts[0], p, mode)
            after = caricature_objective(rotated[1], rotated[0], p, mode)
            assert abs((after - before) / before).item() < 1e-5
    channel = obj.channel(layer, 3)
    assert not torch.allclose(channel({layer: acts}), channel({layer: rotated}), rtol=1e-2)


@pytest.fixture(scope="module")
def photo_caricatures(lite0):
    config = quiet(steps=96, size=128, cosine_power=1.0)
    return {name: caricature(lite0, name, MID_LAYERS, config) for name in PHOTOS}


@pytest.mark.slow
def test_a_caricature_is_closest_to_its_own_photo(lite0, photo_caricatures):
    references = torch.stack([lite0.prepare(ns.data.photo(n), 128, crop_fraction=1.0)[0] for n in PHOTOS])
    grey = torch.full((1, 3, 128, 128), 0.5)
    for index, layer in enumerate(MID_LAYERS):
        ref = activations(lite0, references, layer).flatten(1)
        start = activations(lite0, grey, layer).flatten(1)
        for row, name in enumerate(PHOTOS):
            car = activations(lite0, photo_caricatures[name].images[index : index + 1], layer).flatten(1)
            cos = F.cosine_similarity(car, ref)
            own = cos[row].item()
            assert own == cos.max().item(), f"{name} at {layer}: {cos.tolist()}"
            assert own > F.cosine_similarity(start, ref[row : row + 1]).item()
            assert photo_caricatures[name].similarity[index].item() == pytest.approx(own, abs=1e-3)


@pytest.mark.slow
def test_caricatures_are_more_extreme_and_p_keeps_them_closer(lite0):
    image, layer = "chelsea", "blocks.3.1"
    cosines = {}
    for p in (0.0, 1.0, 2.0):
        runs = [caricature(lite0, image, [layer], quiet(steps=256, size=96, cosine_power=p, seed=s)) for s in range(3)]
        cosines[p] = np.mean([r.similarity.item() for r in runs])
        if p == 0:
            reference = lite0.prepare(ns.data.photo(image), 96, crop_fraction=1.0)
            a0 = activations(lite0, reference, layer).flatten()
            for run in runs:
                a = activations(lite0, run.images, layer).flatten()
                assert (a @ a0).item() > (a0 @ a0).item()
    assert cosines[0.0] <= cosines[1.0] <= cosines[2.0], cosines


def test_normalized_attribution_peaks_at_one_and_is_detached(lite0):
    x = lite0.prepare(ns.data.photo("chelsea"), 96).requires_grad_(True)
    with ns.capture(lite0, ["blocks.4.2"]) as cap:
        a = cap(x)["blocks.4.2"]
        attribution = normalized_attribution(a, a[0].pow(2).sum())
    assert attribution.max().item() == 1.0 and not attribution.requires_grad
    expected = a[0].detach().pow(2) / a[0].detach().pow(2).max()  # F = sum a^2 gives a0^2 / max
    torch.testing.assert_close(attribution, expected, atol=1e-6, rtol=1e-5)


def two_objects() -> np.ndarray:
    cat = ns.data.preprocess.center_crop_resize(ns.data.preprocess.to_tensor(ns.data.photo("chelsea")), (224, 224))
    cup = ns.data.preprocess.center_crop_resize(ns.data.preprocess.to_tensor(ns.data.photo("coffee")), (224, 224))
    return torch.cat([cat, cup], dim=3)[0].permute(1, 2, 0).numpy()  # 224 x 448, fed at its own size


@pytest.mark.slow
def test_attributive_caricatures_are_class_specific(lite0):
    config = quiet(steps=96, size=(224, 448), cosine_power=0.0)
    result = attributive_caricature(lite0, two_objects(), "blocks.5.1", ["Egyptian cat", "espresso"], config)
    with torch.no_grad(), ns.capture(lite0, ["logits"]) as cap:
        logits = cap(result.images)["logits"]
    cat, espresso = 285, 967
    # A caricature of evidence is not a class visualization (both rank their class ~100-500th) and
    # the two differ in overall logit scale, so compare the cat-vs-espresso log-odds: the picture of
    # the cat's evidence leans to "cat", the picture of the cup's evidence to "espresso".
    log_odds = logits[:, cat] - logits[:, espresso]
    assert log_odds[0] > 0 > log_odds[1], log_odds
    assert result.labels == ["blocks.5.1 · Egyptian cat", "blocks.5.1 · espresso"]


def test_the_iterated_and_neuron_specific_variants_run(lite0):
    config = quiet(steps=4, size=64, cosine_power=0.0)
    iterated = attributive_caricature(lite0, "chelsea", "blocks.3.1", ["tabby"], config, via=["blocks.4.2", "blocks.5.1"])
    specific = attributive_caricature(lite0, "chelsea", "blocks.3.1", ["blocks.4.2:5"], config, specific=True)
    assert iterated.images.shape == specific.images.shape == (1, 3, 64, 64)
    assert torch.isfinite(iterated.history).all() and torch.isfinite(specific.history).all()
    assert iterated.labels == ["blocks.3.1 · tabby"] and specific.manifest["specific"] is True
    # each value (p = 0) is <the caricature's blocks.3.1 activations, the variant's direction on the photo>
    reference = iterated.reference[None]
    with torch.no_grad(), ns.capture(lite0, ["blocks.3.1"]) as cap:
        a = cap(torch.cat([reference, iterated.images, specific.images]))["blocks.3.1"]
    torch.testing.assert_close(iterated.values[0], (a[1] * iterated_direction(lite0, reference)).sum(), rtol=1e-4, atol=1e-4)
    weights = linear_input_weights(lite0, "blocks.3.1", "blocks.4.2", 5).view(-1, 1, 1)
    torch.testing.assert_close(specific.values[0], (a[2] * a[0] * weights).sum(), rtol=1e-4, atol=1e-4)


def iterated_direction(model, reference: torch.Tensor) -> torch.Tensor:
    """The tabby logit's attribution at blocks.5.1, as the score whose attribution at blocks.4.2
    is the score whose attribution at blocks.3.1 is the direction (each normalized to a peak of 1)."""
    layers = ["blocks.3.1", "blocks.4.2", "blocks.5.1"]
    with ns.capture(model, [*layers, "logits"]) as cap:
        acts = cap(reference.clone().requires_grad_(True))
    score = acts["logits"][0, 281]
    for layer in reversed(layers):
        (grad,) = torch.autograd.grad(score, acts[layer], retain_graph=True)
        attribution = (acts[layer] * grad).detach()
        weight = attribution / attribution.max()
        score = (acts[layer] * weight).sum()
    return weight[0]


def linear_input_weights(model, layer: str, unit_layer: str, channel: int) -> torch.Tensor:
    """What a unit's mean reads from each channel of ``layer`` with every ReLU6 made the identity:
    the path between them is then affine, so its gradient on any photo is its weights."""
    photo = model.prepare(ns.data.photo("coffee")).requires_grad_(True)
    with linear_forward(model.module), ns.capture(model, [layer, unit_layer]) as cap:
        acts = cap(photo)
        (grad,) = torch.autograd.grad(acts[unit_layer][0, channel].mean(), acts[layer])
    return grad[0].sum((1, 2))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda m: caricature(m, "chelsea", ["blocks.9"], quiet(steps=1)), "unknown layer 'blocks.9'"),
        (lambda m: caricature(m, "no_such_photo.png", ["blocks.2.1"], quiet(steps=1)), "image file not found"),
        (lambda m: attributive_caricature(m, "chelsea", "blocks.4.2", ["tabbby"], quiet(steps=1)), "unknown class 'tabbby'"),
        (lambda m: caricature(m, "chelsea", [], quiet(steps=1)), "no layers given"),
        (lambda m: CaricatureConfig(cosine="exact"), "unknown cosine mode 'exact'"),
    ],
)
def test_bad_input_gets_a_clear_error(lite0, make, message):
    with pytest.raises(ns.NeuronscopeError, match=message):
        make(lite0)


def test_an_unreadable_image_gets_a_clear_error(lite0, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ns.NeuronscopeError, match="cannot read .*broken.jpg.* as an image"):
        caricature(lite0, str(broken), ["blocks.2.1"], quiet(steps=1))


def attribution_setup(model, layers):
    x = model.prepare(ns.data.photo("chelsea"), 64).requires_grad_(True)
    with ns.capture(model, layers) as cap:
        return cap(x)


def test_the_positive_variant_keeps_exactly_the_positive_evidence(lite0):
    from neuronscope.featurevis.caricature.attributive import _attribution

    layer, tabby = "blocks.3.1", ns.Unit("logits", 281)
    acts = attribution_setup(lite0, [layer, "logits"])
    signed = _attribution(layer, [], tabby)(acts)
    positive = _attribution(layer, [], tabby, positive=True)(acts)
    # the signed direction is a0 * d logit / d a0 over its maximum, computed here independently
    (grad,) = torch.autograd.grad(acts["logits"][0, 281], acts[layer], retain_graph=True)
    raw = (acts[layer][0] * grad[0]).detach()
    torch.testing.assert_close(signed, raw / raw.max())
    assert signed.min() < -0.05 and (signed < 0).float().mean() > 0.1  # real counter-evidence to drop
    torch.testing.assert_close(positive, signed.clamp(min=0), rtol=0, atol=0)
    assert positive.min() == 0 and positive.max() == 1
    assert torch.equal(positive > 0, signed > 0)


def test_the_iterated_variant_passes_the_attribution_down_the_chain(lite0):
    from neuronscope.featurevis.caricature.attributive import _attribution

    layer, via, tabby = "blocks.3.1", "blocks.4.2", ns.Unit("logits", 281)
    acts = attribution_setup(lite0, [layer, via, "logits"])
    iterated = _attribution(layer, [via], tabby)(acts)
    direct = _attribution(layer, [], tabby)(acts)
    # by hand: the attribution at blocks.4.2 (normalized) becomes the score attributed to blocks.3.1
    (upper_grad,) = torch.autograd.grad(acts["logits"][0, 281], acts[via], retain_graph=True)
    upper = (acts[via][0] * upper_grad[0]).detach()
    score = (acts[via][0] * (upper / upper.max())).sum()
    (grad,) = torch.autograd.grad(score, acts[layer], retain_graph=True)
    expected = (acts[layer][0] * grad[0]).detach()
    torch.testing.assert_close(iterated, expected / expected.max())
    assert iterated.max() == 1 and not torch.allclose(iterated, direct, atol=0.05)


class TwoStep(torch.nn.Module):
    """source (1x1 conv) -> ReLU -> target (1x1 conv): the target's linearized input weights
    from the source are its 1x1 kernel."""

    def __init__(self):
        super().__init__()
        self.source = torch.nn.Conv2d(3, 4, 1)
        self.relu = torch.nn.ReLU()
        self.target = torch.nn.Conv2d(4, 2, 1)
        self.fc = torch.nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(self.target(self.relu(self.source(x))).mean((2, 3)))


def test_the_specific_variant_weights_the_reference_by_what_the_unit_reads():
    from neuronscope.featurevis.caricature.attributive import (
        _input_weights,
        _weighted_reference,
    )

    torch.manual_seed(0)
    network = TwoStep()
    model = ns.wrap(network, input_size=16)
    assert (network.source.bias < 0).any()  # on the blank probe those ReLUs are off: only linearized do they pass
    weights = _input_weights(model, "source", ns.Unit("target", 1))
    # the channel's mean over positions reads w[1, i] / HW at each position: summed, the kernel itself
    torch.testing.assert_close(weights, network.target.weight[1, :, 0, 0].detach())
    a = torch.randn(2, 4, 5, 5)
    direction = _weighted_reference("source", weights)({"source": a})
    torch.testing.assert_close(direction, a[0] * weights.view(4, 1, 1))
    result = attributive_caricature(model, np.random.default_rng(0).random((16, 16, 3)).astype(np.float32), "source",
                                    ["target:1"], quiet(steps=3, size=16, cosine_power=0.0), specific=True)
    assert result.manifest["specific"] is True and torch.isfinite(result.values).all()
