"""Model specs: a zoo name, package.module:factory, file.py:factory or a TorchScript file, with
--weights and metadata options, from Python and from every command; bad specs get one line."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import neuronscope as ns
from neuronscope.cli.main import main
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import GalleryConfig, build_gallery
from neuronscope.models.placement import resolve_device
from neuronscope.replay import rerender

FACTORIES = Path(__file__).parent / "user_models" / "lite0.py"
PLUMBING = Path(__file__).parent / "user_models" / "plumbing.py"


@pytest.fixture(scope="module")
def lite0_weights(lite0, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "lite0.pt"
    torch.save(lite0.module.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def lite0_by_file(lite0_weights) -> ns.Model:
    return ns.load(f"{FACTORIES}:lite0", weights=str(lite0_weights))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_lite0_through_a_file_factory_gives_the_zoo_models_logits(lite0, lite0_by_file):
    """Real weights through the spec path: same metadata, same logits, same class for a photo."""
    assert lite0_by_file.name == "efficientnet_lite0" and lite0_by_file.input_size == lite0.input_size
    assert (lite0_by_file.mean, lite0_by_file.std, lite0_by_file.crop_fraction) == (lite0.mean, lite0.std, lite0.crop_fraction)
    assert [i.name for i in lite0_by_file.layers] == [i.name for i in lite0.layers]
    x = lite0.input("chelsea")
    with torch.no_grad():
        assert torch.equal(lite0.module(lite0.normalize(x)), lite0_by_file.module(lite0_by_file.normalize(x)))
    assert ns.classify(lite0_by_file, ["chelsea"])[0][0].label == ns.classify(lite0, ["chelsea"])[0][0].label


def test_lite0_through_a_file_factory_renders_the_same_pixels(lite0, lite0_by_file):
    config = RenderConfig(steps=24, size=96, progress=False)
    units = ["blocks.4.2:5", "logits:281"]
    a, b = ns.render_units(lite0, units, config), ns.render_units(lite0_by_file, units, config)
    assert np.array_equal(a.images, b.images)


@pytest.mark.slow
def test_lite0_through_a_file_factory_builds_the_same_gallery_pages(lite0, lite0_by_file, tmp_path):
    """Every page and picture of a small build is byte-identical; only the manifests differ, by
    the spec that says how to load the model again."""
    folder = tmp_path / "images"
    source = ns.data.bundled_source()
    for i, key in enumerate(source.keys()[::40][:6]):
        ns.images.save_png(folder / f"{i}.png", source.load(key))
    config = GalleryConfig(layers=("blocks.4.2",), units=2, samples=1, examples=3, photos=("chelsea",),
                           caricature_steps=6, render=RenderConfig(steps=12, size=64, progress=False),
                           source=str(folder), progress=False)
    build_gallery(lite0, config, tmp_path / "zoo")
    build_gallery(lite0_by_file, config, tmp_path / "spec")
    zoo_files = sorted(p.relative_to(tmp_path / "zoo") for p in (tmp_path / "zoo").rglob("*") if p.is_file())
    spec_files = sorted(p.relative_to(tmp_path / "spec") for p in (tmp_path / "spec").rglob("*") if p.is_file())
    assert zoo_files == spec_files and len(zoo_files) > 10
    def content(root: Path, path: Path) -> bytes:  # the index says when it was built: not compared
        return re.sub(rb"built \d{4}-[0-9T:-]+Z", b"built", (root / path).read_bytes())

    differing = [str(p) for p in zoo_files if p.suffix != ".json"
                 and content(tmp_path / "zoo", p) != content(tmp_path / "spec", p)]
    assert differing == []
    data = json.loads((tmp_path / "spec" / "efficientnet_lite0" / "manifest.json").read_text())
    assert data["model_spec"]["source"] == f"{FACTORIES.resolve()}:lite0"
    assert data["model_spec"]["weights"] == str(lite0_by_file.spec.weights)
    again = ns.ModelSpec.from_dict(data["model_spec"]).load()
    assert again.name == "efficientnet_lite0" and ns.models.digest.weights_digest(again) == ns.models.digest.weights_digest(lite0)


def test_a_cli_render_of_a_factory_model_records_how_to_load_it_and_renders_again(capsys, lite0_weights, tmp_path):
    out = tmp_path / "r"
    code, _, err = run(capsys, "render", f"{FACTORIES}:lite0", "--weights", lite0_weights, "blocks.4.2:3",
                       "--steps", 12, "--size", 64, "-o", out, "--no-progress", "--device", "cpu")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_spec"]["weights"] == str(lite0_weights.resolve())
    again = rerender(out / "manifest.json")  # loads the model by its spec, not by a zoo name
    png = np.asarray(Image.open(out / manifest["files"][0]).convert("RGB"), dtype=np.float32) / 255
    assert np.abs(again.images[0].permute(1, 2, 0).numpy() - png).max() <= 0.5 / 255 + 1e-6  # PNG rounding only


def test_the_metadata_options_override_the_models_own(lite0_weights, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {i}" for i in range(1000)))
    model = ns.load(f"{FACTORIES}:lite0", weights=str(lite0_weights), input_size=160, normalize="0.5,0.5",
                    labels=str(labels))
    assert model.input_size == (160, 160) and model.mean == (0.5,) * 3 and model.std == (0.5,) * 3
    assert model.labels[281] == "class 281" and model.class_index("class 7") == 7
    assert model.layer("blocks.6.0").spatial == (5, 5)  # the probe ran at the new size


def test_a_loaded_model_carries_its_spec_and_precision_from_construction(tmp_path):
    """Plumbing only (random weights): ``load`` builds the Model whole, nothing is set on it afterwards."""
    model = ns.load(f"{PLUMBING}:resnet", precision="bf16", device="cpu")
    assert model.info.precision is model.precision is torch.bfloat16
    assert model.info.spec is model.spec
    assert model.spec == ns.ModelSpec(f"{PLUMBING.resolve()}:resnet", device="cpu", precision="bf16")
    assert model.input_size == (64, 64) and model.labels is None  # 10 outputs: no ImageNet names
    (tmp_path / "wide.py").write_text(
        "from torch import nn\n"
        "def wide():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1000))\n")
    wide = ns.load(f"{tmp_path / 'wide.py'}:wide", input_size=32, device="cpu")
    assert len(wide.labels) == 1000 and wide.class_index("tabby") == 281  # 1000 outputs: ImageNet names
    assert wide.spec.input_size == 32 and wide.precision is None


def test_a_package_module_factory_and_a_torchscript_file_load(tmp_path, monkeypatch, capsys):
    """Plumbing only (random weights): a factory in an importable package and a scripted model."""
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        "from torch import nn\n"
        "def small():\n"
        "    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))\n"
        "    net.input_size = 32\n"
        "    return net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = ns.load("mypkg.nets:small")
    assert model.input_size == (32, 32) and model.layer("1").channels == 8 and model.num_classes == 5
    assert model.mean == (0.485, 0.456, 0.406) and model.labels is None  # imagenet normalization by default
    torch.manual_seed(0)
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)))
    path = tmp_path / "net.pt"
    scripted.save(str(path))
    code, out, err = run(capsys, "layers", path, "--input-size", 40, "--all")
    assert code == 0, err
    assert "logits" in out and "input 3x40x40" in out


@pytest.mark.parametrize("argv, message", [
    (["layers", "no_such_pkg.nets:small"], "cannot import module 'no_such_pkg.nets'"),
    (["layers", f"{FACTORIES}:lite00"], "has no factory 'lite00': did you mean"),
    (["layers", f"{FACTORIES}:broken"], "raised ValueError: this factory cannot build its model"),
    (["layers", f"{FACTORIES}:not_a_module"], "returned int, not an nn.Module"),
    (["layers", f"{FACTORIES}:LITTLE"], "is a int, not a callable"),
    (["layers", "missing_file.py:lite0"], "model file 'missing_file.py' does not exist"),
    (["layers", "efficientnet_lite9"], "unknown model 'efficientnet_lite9': did you mean"),
    (["classify", "chelsea", "--model", "efficientnet_lite1", "--weights", "WEIGHTS"], "does not fit EfficientNetLite"),
    (["classify", "chelsea", "--weights", "nowhere.pt"], "weights file 'nowhere.pt' does not exist"),
    (["classify", "chelsea", "--device", "tpu"], "unknown device 'tpu': choose auto, cpu, cuda, mps"),
    (["classify", "chelsea", "--normalize", "0.1,0.2,0.3"], "unknown normalization '0.1,0.2,0.3'"),
    (["classify", "chelsea", "--model", "NOT_SCRIPT"], "is not a TorchScript model"),
])
def test_bad_specs_get_one_line_and_exit_2(argv, message, capsys, lite0_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state.pt").write_bytes(lite0_weights.read_bytes())
    argv = [str(lite0_weights) if a == "WEIGHTS" else str(tmp_path / "state.pt") if a == "NOT_SCRIPT" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_devices_that_are_not_here_are_refused_and_auto_finds_one():
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ns.NeuronscopeError, match="not available here"):
            resolve_device("cuda")


def test_bf16_precision_classifies_a_photo_like_float32(lite0_weights):
    """Real weights: the autocast forward pass (bf16 also runs on CPU) keeps chelsea's top class."""
    model = ns.load("efficientnet_lite0", precision="bf16", device="cpu")
    assert model.precision == torch.bfloat16
    top = ns.classify(model, ["chelsea"])[0][0]
    assert top.label in ("tabby", "tiger cat", "Egyptian cat")
    with pytest.raises(ns.NeuronscopeError, match="fp16 needs a cuda or mps device"):
        ns.load("efficientnet_lite0", precision="fp16", device="cpu")


def test_a_render_that_runs_out_of_memory_halves_its_batches_and_gives_the_same_pixels(lite0, monkeypatch):
    """Real weights: batches of more than 2 images 'run out of memory' (a stand-in for a GPU's
    error); render_units halves them and each unit's image is what one batch gives."""
    import importlib

    render_module = importlib.import_module("neuronscope.featurevis.render")  # the module, not the function

    config = RenderConfig(steps=6, size=48, progress=False)
    units = ["blocks.4.2:1", "blocks.4.2:2", "blocks.4.2:3", "blocks.4.2:4", "blocks.4.2:5"]
    whole = ns.render_units(lite0, units, config)
    real, sizes = render_module.optimize, []

    def small_memory(model, objective, param, *args, **kwargs):
        sizes.append(param.batch)
        if param.batch > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(model, objective, param, *args, **kwargs)

    monkeypatch.setattr(render_module, "optimize", small_memory)
    halved = ns.render_units(lite0, units, config)
    assert sizes[0] == 5 and max(s for s in sizes if s <= 2) == 2
    torch.testing.assert_close(halved.images, whole.images, atol=1e-5, rtol=0)
    monkeypatch.setattr(render_module, "optimize", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("out of memory")))
    with pytest.raises(ns.NeuronscopeError, match="out of memory rendering one unit"):
        ns.render_units(lite0, units[:1], config)
