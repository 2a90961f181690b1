"""InceptionV1 / GoogLeNet in the zoo: Lucid's layer names and widths, the BVLC convolution table,
the weight layouts, and the opt-in fetch. Structure tests: every network here has random weights
(no pretrained file is downloaded; the real ones are not on this machine)."""
import os
import re
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from neuronscope.capture import capture
from neuronscope.cli.main import main
from neuronscope.errors import NeuronscopeError
from neuronscope.models import fetch as fetching
from neuronscope.models import inception_v1
from neuronscope.models.zoo import ZOO

LUCID_WIDTHS = {"conv2d0": 64, "conv2d1": 64, "conv2d2": 192, "mixed3a": 256, "mixed3b": 480, "mixed4a": 508,
                "mixed4b": 512, "mixed4c": 512, "mixed4d": 528, "mixed4e": 832, "mixed5a": 832, "mixed5b": 1024}
"""Lucid's modelzoo InceptionV1 layer list (lucid/modelzoo/other_models/InceptionV1.py)."""
PAPER_WIDTHS = {**LUCID_WIDTHS, "mixed4a": 512}
"""GoogLeNet's paper / torchvision widths: only mixed4a differs (3x3 tower 208, not 204)."""
SPATIAL = {"conv2d0": "112x112", "conv2d1": "56x56", "conv2d2": "56x56", "mixed3a": "28x28", "mixed3b": "28x28",
           **{f"mixed4{b}": "14x14" for b in "abcde"}, "mixed5a": "7x7", "mixed5b": "7x7"}
TOWERS = {"1x1": "1x1", "3x3_reduce": "3x3_bottleneck", "3x3": "3x3", "5x5_reduce": "5x5_bottleneck",
          "5x5": "5x5", "pool_proj": "pool_reduce"}
"""BVLC (caffe) tower names -> Lucid's."""
INCEPTION5H_VS_BVLC = {
    "mixed4a_3x3_pre_relu": ((204, 96, 3, 3), (208, 96, 3, 3)),
    "mixed4b_1x1_pre_relu": ((160, 508, 1, 1), (160, 512, 1, 1)),
    "mixed4b_3x3_bottleneck_pre_relu": ((112, 508, 1, 1), (112, 512, 1, 1)),
    "mixed4b_5x5_bottleneck_pre_relu": ((24, 508, 1, 1), (24, 512, 1, 1)),
    "mixed4b_pool_reduce_pre_relu": ((64, 508, 1, 1), (64, 512, 1, 1)),
    "mixed5a_5x5_bottleneck_pre_relu": ((48, 832, 1, 1), (32, 832, 1, 1)),
    "mixed5a_5x5_pre_relu": ((128, 48, 5, 5), (128, 32, 5, 5)),
}
"""The only convolutions where inception5h (ours, first) differs from BVLC GoogLeNet (second)."""


@pytest.fixture(autouse=True)
def _empty_home(tmp_path, monkeypatch):
    """No downloaded weights: NEURONSCOPE_HOME is the test's own empty folder."""
    monkeypatch.setenv("NEURONSCOPE_HOME", str(tmp_path / "home"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def layer_rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}


def random_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    network = inception_v1.InceptionV1(inception_v1.VARIANTS[name])
    for module in network.modules():  # BatchNorm statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return network.state_dict()


def to_lucent(state):
    """Our keys -> Lucent's InceptionV1 keys (its modules are named ``<layer>_pre_relu_conv``)."""
    renamed = {}
    for key, tensor in state.items():
        key = re.sub(r"_pre_relu\.(weight|bias)$", r"_pre_relu_conv.\1", key)
        renamed[key.replace("softmax2_pre_activation.", "softmax2_pre_activation_matmul.")] = tensor
    return renamed


def to_torchvision(state):
    """Our keys -> torchvision's GoogLeNet keys, plus its (untrained) auxiliary heads."""
    branches = {"1x1": "branch1", "3x3_bottleneck": "branch2.0", "3x3": "branch2.1", "5x5_bottleneck": "branch3.0",
                "5x5": "branch3.1", "pool_reduce": "branch4.1"}
    renamed = {}
    for key, tensor in state.items():
        layer, _, rest = key.partition(".")
        stem = re.fullmatch(r"conv2d(\d)_pre_relu", layer)
        mixed = re.fullmatch(r"mixed(\d[a-e])_(.+)_pre_relu", layer)
        if stem:
            layer = f"conv{int(stem.group(1)) + 1}"
        elif mixed:
            layer = f"inception{mixed.group(1)}.{branches[mixed.group(2)]}"
        elif layer == "softmax2_pre_activation":
            layer = "fc"
        renamed[f"{layer}.{rest}"] = tensor
    renamed |= {"aux1.conv.conv.weight": torch.zeros(128, 512, 1, 1), "aux1.fc1.weight": torch.zeros(1024, 2048),
                "aux2.fc2.bias": torch.zeros(1000)}
    return renamed


LAYOUTS = {("inceptionv1", "ours"): lambda s: s, ("inceptionv1", "lucent"): to_lucent,
           ("googlenet", "ours"): lambda s: s, ("googlenet", "torchvision"): to_torchvision}


def saved(tmp_path: Path, name: str, layout: str, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor]]:
    state = random_state(name, seed)
    path = tmp_path / f"{name}-{layout}.pth"
    torch.save(LAYOUTS[name, layout](state), path)
    return path, state


def assert_loaded(model, state) -> None:
    loaded = model.module.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def one_line_error(call, *fragments) -> str:
    with pytest.raises(NeuronscopeError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    return message


# --- layer names and widths ----------------------------------------------------------------


def test_layers_lists_lucids_names_and_widths_random_weights(capsys):
    code, out, _ = run(capsys, "layers", "inceptionv1")
    assert code == 0
    rows = layer_rows(out)
    assert list(rows) == [*LUCID_WIDTHS, "logits"]
    assert {name: int(rows[name][-2]) for name in LUCID_WIDTHS} == LUCID_WIDTHS
    assert {name: rows[name][-1] for name in LUCID_WIDTHS} == SPATIAL
    assert rows["logits"] == ["logits", "1008", "-"]

    code, out, _ = run(capsys, "layers", "inceptionv1", "--all")
    assert code == 0
    rows = layer_rows(out)
    widths = {"conv2d0_pre_relu": 64, "mixed4a_pre_relu": 508, "mixed4a_1x1": 192, "mixed4a_3x3": 204,
              "mixed4a_5x5_bottleneck_pre_relu": 16, "mixed4d_3x3_bottleneck_pre_relu": 144,
              "mixed4d_3x3_bottleneck": 144, "mixed5a_5x5_bottleneck": 48, "mixed5b_pre_relu": 1024,
              "softmax2_pre_activation": 1008}
    assert {name: int(rows[name][-2]) for name in widths} == widths
    assert rows["localresponsenorm0"][-2:] == ["64", "56x56"] and rows["maxpool10"][-2:] == ["832", "7x7"]


def test_googlenet_has_the_paper_widths_under_lucids_names_random_weights(capsys):
    code, out, _ = run(capsys, "layers", "googlenet")
    assert code == 0
    rows = layer_rows(out)
    assert {name: int(rows[name][-2]) for name in PAPER_WIDTHS} == PAPER_WIDTHS
    assert {name: rows[name][-1] for name in PAPER_WIDTHS} == SPATIAL
    assert rows["logits"] == ["logits", "1000", "-"]


def test_every_lucid_layer_runs_once_on_the_forward_path_random_weights():
    model = ZOO["inceptionv1"].build(None)
    layers = ["mixed4a_1x1_pre_relu", "mixed4a_3x3_pre_relu", "mixed4a_5x5_pre_relu", "mixed4a_pool_reduce_pre_relu",
              "mixed4a_pre_relu", "mixed4a", "mixed4b", "softmax2_pre_activation", "logits"]
    x = torch.rand(1, 3, 224, 224)
    with capture(model, layers, grads=True) as cap:
        acts = cap(x)
        acts["mixed4b"].sum().backward()
    towers = [acts[f"mixed4a_{t}_pre_relu"] for t in ("1x1", "3x3", "5x5", "pool_reduce")]
    assert torch.equal(acts["mixed4a_pre_relu"], torch.cat(towers, 1))
    assert torch.equal(acts["mixed4a"], acts["mixed4a_pre_relu"].relu())
    assert torch.equal(acts["softmax2_pre_activation"], acts["logits"])
    # Gradients reach both concatenations: they feed the rest of the network, not side taps.
    assert cap.gradients["mixed4a_pre_relu"].abs().sum() > 0 and cap.gradients["mixed4a"].abs().sum() > 0
    assert all(cap.calls[name] == 1 for name in layers if name != "logits")
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.module.modules()) == 3 + 9 * 6


def test_inputs_are_lucids_range_and_labels_are_inception5hs():
    model = ZOO["inceptionv1"].build(None)
    assert torch.allclose(model.normalize(torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)),
                          torch.tensor([-117.0, 138.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert len(model.labels) == 1008 and model.labels[0] == "dummy" and model.labels[1007] == "unused 1007"
    assert model.class_index("tabby") == 174 and model.class_index("kit fox") == 1
    assert ZOO["googlenet"].build(None).class_index("tabby") == 281


# --- the BVLC GoogLeNet convolution table (ONNX's light model) -------------------------------


def bvlc_convolutions() -> dict[str, tuple[int, ...]]:
    """Lucid name -> (out, in, kh, kw) of every convolution of ONNX's weightless BVLC GoogLeNet."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install neuronscope[test])")
    from onnx import numpy_helper

    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_inception_v1.onnx"
    if not path.is_file():
        pytest.skip(f"this onnx has no {path.name}")
    graph = onnx.load(str(path)).graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    stem = {"conv1/7x7_s2": "conv2d0", "conv2/3x3_reduce": "conv2d1", "conv2/3x3": "conv2d2"}
    shapes = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight = node.input[1]
        # The light model stores no weights: each is ConstantOfShape(an int64 shape initializer).
        dims = (list(initializers[weight].dims) if weight in initializers
                else numpy_helper.to_array(initializers[producers[weight].input[0]]).tolist())
        caffe = weight.removesuffix("_w_0")
        block, _, tower = caffe.partition("/")
        name = stem.get(caffe) or f"mixed{block.removeprefix('inception_')}_{TOWERS[tower]}"
        shapes[f"{name}_pre_relu"] = tuple(int(d) for d in dims)
    return shapes


def our_convolutions(name: str) -> dict[str, tuple[int, ...]]:
    network = inception_v1.InceptionV1(inception_v1.VARIANTS[name])
    return {layer.removesuffix(".conv"): tuple(module.weight.shape) for layer, module in network.named_modules()
            if isinstance(module, torch.nn.Conv2d)}


def test_googlenet_has_bvlcs_convolutions_but_torchvisions_3x3_in_the_5x5_towers():
    bvlc, ours = bvlc_convolutions(), our_convolutions("googlenet")
    assert len(bvlc) == 57 and ours.keys() == bvlc.keys()
    differ = {name for name in bvlc if ours[name] != bvlc[name]}
    assert differ == {f"mixed{b}_5x5_pre_relu" for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")}
    assert all(ours[n][:2] == bvlc[n][:2] and ours[n][2:] == (3, 3) and bvlc[n][2:] == (5, 5) for n in differ)


def test_inceptionv1_differs_from_bvlc_in_exactly_seven_known_convolutions():
    bvlc, ours = bvlc_convolutions(), our_convolutions("inceptionv1")
    assert ours.keys() == bvlc.keys()
    assert {name: (ours[name], bvlc[name]) for name in bvlc if ours[name] != bvlc[name]} == INCEPTION5H_VS_BVLC


# --- weight layouts ------------------------------------------------------------------------


def test_lucents_and_torchvisions_key_names_and_shapes():
    lucent = to_lucent(random_state("inceptionv1"))
    assert len(lucent) == 116
    assert {k: tuple(lucent[k].shape) for k in ("conv2d0_pre_relu_conv.weight", "mixed4a_3x3_pre_relu_conv.weight",
                                                "mixed4b_1x1_pre_relu_conv.weight", "mixed5b_5x5_pre_relu_conv.weight",
                                                "softmax2_pre_activation_matmul.weight")} == {
        "conv2d0_pre_relu_conv.weight": (64, 3, 7, 7), "mixed4a_3x3_pre_relu_conv.weight": (204, 96, 3, 3),
        "mixed4b_1x1_pre_relu_conv.weight": (160, 508, 1, 1), "mixed5b_5x5_pre_relu_conv.weight": (128, 48, 5, 5),
        "softmax2_pre_activation_matmul.weight": (1008, 1024)}
    tv = to_torchvision(random_state("googlenet"))
    assert {k: tuple(tv[k].shape) for k in ("conv1.conv.weight", "inception4a.branch2.1.conv.weight",
                                            "inception5a.branch3.1.conv.weight", "inception3a.branch4.1.bn.running_var",
                                            "fc.weight")} == {
        "conv1.conv.weight": (64, 3, 7, 7), "inception4a.branch2.1.conv.weight": (208, 96, 3, 3),
        "inception5a.branch3.1.conv.weight": (128, 32, 3, 3), "inception3a.branch4.1.bn.running_var": (32,),
        "fc.weight": (1000, 1024)}
    assert sum(p.numel() for k, p in tv.items() if not k.startswith("aux") and "running" not in k
               and "num_batches" not in k) == 6_624_904  # torchvision's published count without aux heads


@pytest.mark.parametrize("name, layout", sorted(LAYOUTS))
def test_a_state_dict_in_each_layout_loads_strict_random_weights(tmp_path, name, layout):
    path, state = saved(tmp_path, name, layout)
    model = ZOO[name].build(path)
    assert model.weights_missing is None
    assert_loaded(model, state)
    assert not any(p.requires_grad for p in model.module.parameters()) and not model.module.training


def test_the_cli_loads_weights_and_refuses_a_model_without_them_random_weights(capsys, tmp_path):
    path, _ = saved(tmp_path, "inceptionv1", "lucent")
    code, out, _ = run(capsys, "classify", "chelsea", "--model", "inceptionv1", "--weights", str(path), "--top", "2")
    assert code == 0 and "(inceptionv1, centre crop)" in out
    code, _, err = run(capsys, "classify", "chelsea", "--model", "googlenet")
    assert code == 2 and "googlenet has no weights here" in err and "neuronscope fetch googlenet" in err


@pytest.mark.parametrize("name, fragment", [("inceptionv1", "Lucent's inception5h.pth"),
                                            ("googlenet", "torchvision's googlenet state dict")])
def test_bad_weight_files_are_one_line_naming_the_layout(tmp_path, name, fragment):
    build = ZOO[name].build
    one_line_error(lambda: build(tmp_path / "nope.pth"), "does not exist", fragment)
    other = ("googlenet", "torchvision") if name == "inceptionv1" else ("inceptionv1", "lucent")
    wrong, _ = saved(tmp_path, *other)
    one_line_error(lambda: build(wrong), "does not fit", "missing keys", fragment)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"these are not the weights you are looking for\n" * 10)
    one_line_error(lambda: build(garbage), "not a readable torch state dict", fragment)
    truncated = tmp_path / "truncated.pth"
    good, _ = saved(tmp_path, name, "ours")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    one_line_error(lambda: build(truncated), "not a readable torch state dict", fragment)


# --- fetch ---------------------------------------------------------------------------------


def test_without_weights_the_architecture_builds_and_says_how_to_get_them():
    model = ZOO["inceptionv1"].build(None)
    assert model.weights_missing == ("inceptionv1 has no weights here: pass --weights FILE (Lucent's "
                                     "inception5h.pth) or run `neuronscope fetch inceptionv1`")
    assert fetching.weights_path("inceptionv1") == Path(os.environ["NEURONSCOPE_HOME"]) / "weights" / "inceptionv1.pth"


@pytest.mark.parametrize("name, layout", [("inceptionv1", "lucent"), ("googlenet", "torchvision")])
def test_fetch_from_a_file_url_installs_into_the_home_and_build_finds_it_random_weights(tmp_path, name, layout):
    path, state = saved(tmp_path, name, layout)
    installed = fetching.fetch(name, url=path.as_uri())
    assert installed == Path(os.environ["NEURONSCOPE_HOME"]) / "weights" / f"{name}.pth"
    assert sorted(p.name for p in installed.parent.iterdir()) == [f"{name}.pth"]  # no .part left behind
    model = ZOO[name].build(None)
    assert model.weights_missing is None
    assert_loaded(model, state)


def test_fetch_installs_nothing_when_the_file_is_wrong_or_unreachable(tmp_path, monkeypatch):
    home = Path(os.environ["NEURONSCOPE_HOME"]) / "weights"
    wrong, _ = saved(tmp_path, "googlenet", "torchvision")
    one_line_error(lambda: fetching.fetch("inceptionv1", url=wrong.as_uri()), "is not inceptionv1's weights",
                   "Lucent's inception5h.pth")
    one_line_error(lambda: fetching.fetch("inceptionv1", url=(tmp_path / "absent.pth").as_uri()),
                   "cannot download", "offline?", "--weights FILE")
    with socket.socket() as probe:  # a local port that nothing listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    one_line_error(lambda: fetching.fetch("googlenet", url=f"http://127.0.0.1:{port}/googlenet.pth"), "cannot download")
    # The known URL's published sha256 prefix is checked (here the "known URL" is a local file).
    good, _ = saved(tmp_path, "googlenet", "torchvision")
    monkeypatch.setitem(inception_v1.VARIANTS, "googlenet", replace(inception_v1.VARIANTS["googlenet"], url=good.as_uri()))
    one_line_error(lambda: fetching.fetch("googlenet"), "is not the published 1378be20")
    one_line_error(lambda: fetching.fetch("resnet50"), "no download is known for 'resnet50'", "inceptionv1, googlenet")
    assert list(home.iterdir()) == []


def test_the_fetch_command_writes_where_it_is_told_random_weights(capsys, tmp_path):
    path, state = saved(tmp_path, "inceptionv1", "lucent")
    out = tmp_path / "mine" / "inception5h.pth"
    code, stdout, _ = run(capsys, "fetch", "inceptionv1", "--url", path.as_uri(), "--out", str(out))
    assert code == 0 and out.is_file() and "verified" in stdout and str(out) in stdout
    assert_loaded(ZOO["inceptionv1"].build(out), state)
    code, _, err = run(capsys, "fetch", "inceptionv1", "--url", (tmp_path / "absent.pth").as_uri())
    assert code == 2 and err.count("\n") == 1 and "cannot download" in err
