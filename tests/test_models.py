"""`wrap` for any module, preprocessing, and metadata inference (random weights: plumbing only)."""
import numpy as np
import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope.data import preprocess
from neuronscope.models import Model, ModelInfo
from neuronscope.models.metadata import parse_labels, parse_normalization


def tiny_net(in_channels: int = 3, classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, classes),
    )


def test_wrap_discovers_layers_by_a_probe_forward():
    model = ns.wrap(tiny_net(), input_size=(32, 48), name="tiny")
    table = {layer.name: layer for layer in model.all_layers()}
    assert list(table) == ["0", "1", "2", "3", "4", "5", "6", "7", "logits"]
    assert (table["2"].kind, table["2"].channels, table["2"].spatial) == ("conv", 16, (16, 24))
    assert (table["3"].kind, table["4"].kind, table["7"].kind) == ("norm", "activation", "linear")
    assert table["logits"].channels == 10 and model.num_classes == 10
    assert not model.module.training


def test_wrap_infers_input_channels_and_handles_greyscale_models():
    model = ns.wrap(tiny_net(in_channels=1), input_size=16)
    assert model.input_channels == 1
    x = model.prepare(ns.data.photo("chelsea"))
    assert x.shape == (1, 1, 16, 16)
    # the grey input is the luminance (ITU-R 601) of what an RGB model of that size is given
    rgb = ns.wrap(tiny_net(), input_size=16).prepare(ns.data.photo("chelsea"))
    luminance = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(x, luminance, atol=1e-5, rtol=0)
    with torch.no_grad(), ns.capture(model, ["logits"]) as cap:
        logits = cap(x)["logits"]
    with torch.no_grad():  # no normalization was named: the network gets the [0, 1] image as it is
        torch.testing.assert_close(logits, tiny_net(in_channels=1).eval()(x))


def test_wrap_labels_and_normalization():
    model = ns.wrap(tiny_net(classes=3), input_size=16, labels=["cat", "dog", "cup"], normalize="imagenet")
    assert ns.parse_unit(model, "logits:dog").channel == 1
    assert model.mean == (0.485, 0.456, 0.406)
    with pytest.raises(ns.NeuronscopeError, match="3 labels given but Sequential outputs 10 classes"):
        ns.wrap(tiny_net(classes=10), input_size=16, labels=["cat", "dog", "cup"])
    with pytest.raises(ns.NeuronscopeError, match="unknown normalization 'caffe': choose one of imagenet, tf, none"):
        ns.wrap(tiny_net(), normalize="caffe")
    imagenet = ns.wrap(tiny_net(classes=1000), input_size=16, labels="imagenet")
    assert imagenet.labels[967] == "espresso"


def test_one_parser_reads_every_way_to_name_a_normalization():
    assert parse_normalization("tf") == ((127 / 255,) * 3, (128 / 255,) * 3) == parse_normalization("TF")
    assert parse_normalization("imagenet") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert parse_normalization("none") is None and parse_normalization(None) is None
    assert parse_normalization("0.5,0.25") == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert parse_normalization("0.1,0.2,0.3,1,2,4") == ((0.1, 0.2, 0.3), (1.0, 2.0, 4.0))
    assert parse_normalization(([0.1, 0.2, 0.3], [1, 2, 4])) == ((0.1, 0.2, 0.3), (1.0, 2.0, 4.0))
    with pytest.raises(ns.NeuronscopeError, match=r"unknown normalization 'caffe': choose one of imagenet, tf, none, \(mean, std\)"):
        parse_normalization("caffe")
    with pytest.raises(ns.NeuronscopeError, match="has a std <= 0"):
        parse_normalization("0.5,0")
    wrapped = ns.wrap(tiny_net(), normalize="tf")
    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(wrapped.normalize(x), (x * 255 - 127) / 128)  # wrap and the zoo agree


def test_one_parser_reads_every_way_to_name_class_labels(tmp_path):
    imagenet = parse_labels("imagenet")
    assert len(imagenet) == 1000 and imagenet.names[281] == "tabby" and imagenet.names[967] == "espresso"
    assert imagenet.index("tabby") == imagenet.index("Tabby Cat") == imagenet.index("281") == 281
    listed = parse_labels(["cat", "dog", "cup"])
    assert listed.names == ("cat", "dog", "cup") and listed.synonyms is None and listed.index("cup") == 2
    names = tmp_path / "labels.txt"
    names.write_text("cat\n\ndog\n")
    assert parse_labels(str(names)).names == ("cat", "dog") and parse_labels(None) is None
    with pytest.raises(ns.NeuronscopeError, match="labels must be 'imagenet', a text file"):
        parse_labels("imagenet21k")


def test_a_model_is_built_whole_from_its_module_and_metadata():
    info = ModelInfo("tiny", input_size=16, normalization=parse_normalization("imagenet"),
                     classes=parse_labels(["cat", "dog", "cup"]), crop_fraction=0.5, layers=["2", "logits"])
    model = Model(tiny_net(classes=3), info)
    assert (model.name, model.input_size, model.input_channels, model.crop_fraction) == ("tiny", (16, 16), 3, 0.5)
    assert (model.mean, model.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert model.labels == ("cat", "dog", "cup") and model.class_index("dog") == 1
    assert [layer.name for layer in model.layers] == ["2", "logits"]
    assert (model.precision, model.spec, model.weights_missing) == (None, None, None)
    with pytest.raises(AttributeError):
        model.input_size = (32, 32)  # metadata is given whole, never patched
    with pytest.raises(ns.NeuronscopeError, match="3 labels given but tiny outputs 10 classes"):
        Model(tiny_net(classes=10), info).layers


def test_wrap_reports_a_failing_probe_clearly():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    with pytest.raises(ns.NeuronscopeError, match=r"failed on a probe input of shape \(1, 3, 16x16\)"):
        ns.wrap(flat, input_size=16).layers


def test_center_crop_keeps_the_middle_and_resizes():
    image = np.zeros((100, 200, 3), np.float32)
    image[:, 50:150] = 1.0  # a white centre square between two black bands
    x = preprocess.center_crop_resize(preprocess.to_tensor(image), (32, 32), crop_fraction=1.0)
    assert x.shape == (1, 3, 32, 32) and torch.allclose(x, torch.ones_like(x))
    wide = preprocess.center_crop_resize(preprocess.to_tensor(image), (16, 32))  # keeps the 1:2 aspect ratio
    assert wide[..., 0].max() < 0.05 and wide[..., 16].min() > 0.95


def test_tf_normalization_is_255x_minus_127_over_128(lite0):
    x = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(lite0.normalize(x), (x * 255 - 127) / 128)
