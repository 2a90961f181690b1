"""Every command on a user's own model: small random-weight ResNet-, VGG- and ViT-like networks
given as file.py:factory specs. Plumbing only (random weights): each command must finish, write
what it says, and record how to load the model again; the pictures mean nothing."""
import json
from pathlib import Path

import pytest

from neuronscope.cli.main import main
from neuronscope.data import bundled_source
from neuronscope.images import save_png

PLUMBING = Path(__file__).parent / "user_models" / "plumbing.py"


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    """Random InceptionV1 weights in our layout, passed with --weights like a user's file."""
    import torch

    from neuronscope.models.inception_v1 import VARIANTS, InceptionV1

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "random_inceptionv1.pt"
    torch.save(InceptionV1(VARIANTS["inceptionv1"]).state_dict(), path)
    return path


def loading(name: str, weights: Path) -> list[str]:
    return ["--weights", str(weights)] if name == "inceptionv1" else []


def expected_source(name: str) -> str:
    return name if name == "inceptionv1" else f"{PLUMBING.resolve()}:{name}"


# spec, a spatial layer, an earlier layer, a unit of the spatial layer, a class
MODELS = {
    "inceptionv1": ("inceptionv1", "mixed4a", "mixed3b", "mixed4a:3", "5"),  # GoogLeNet-shaped, random --weights
    "resnet": (f"{PLUMBING}:resnet", "layer2", "layer1", "layer2:3", "4"),
    "vgg": (f"{PLUMBING}:vgg", "features.10", "features.8", "features.10:2", "1"),
    "vit": (f"{PLUMBING}:vit", "blocks.2", "blocks.1", "blocks.2:5", "class 3"),
}


def commands(spec: str, layer: str, earlier: str, unit: str, label: str) -> dict[str, list[str]]:
    quick = ["--no-progress"]
    return {
        "layers": ["layers", spec, "--all"],
        "classify": ["classify", "chelsea", "--model", spec],
        "activations": ["activations", "chelsea", unit, f"{unit}@1,1", f"logits:{label}", "--model", spec],
        "render": ["render", spec, unit, f"{unit}@1,2", f"logits:{label}", "--steps", "4", "--size", "48", "-o", "render", *quick],
        "render-layer": ["render-layer", spec, layer, "--channels", "0:2", "--steps", "4", "--size", "48", "-o", "layer.png", *quick],
        "caricature": ["caricature", "chelsea", "--model", spec, "--layers", f"{earlier},{layer}", "--steps", "4", "-o", "car.png", *quick],
        "attribute": ["attribute", "chelsea", "--model", spec, "--top", "2", "-o", "att.png"],  # the default layer
        "groups": ["groups", "chelsea", "--model", spec, "--layer", layer, "--k", "2", "--steps", "4", "-o", "groups.png", *quick],
        "dictionary": ["dictionary", "chelsea", "--model", spec, "--layer", layer, "--top", "2", "--steps", "4", "-o", "dict.png", *quick],
        "grid": ["grid", "chelsea", "--model", spec, "--layer", layer, "--steps", "4", "-o", "grid.png", *quick],
        "weights": ["weights", spec, unit, "--from", earlier, "--top", "2", "--steps", "4", "-o", "weights.png", *quick],
        "mechanics": ["mechanics", spec, unit, "--from", earlier, "--steps", "4", "--size", "32", "-o", "mech.png", *quick],
        "views": ["views", spec, unit, "--steps", "4", "-o", "views.png", *quick],
        "ablate": ["ablate", "chelsea", "--model", spec, unit, f"{earlier}:1@1,1"],  # two layers: rows made at the first
    }


COMMANDS = list(commands(*MODELS["resnet"]))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_plumbing_every_command_runs_on_a_random_weight_user_model(name, command, capsys, tmp_path, inception_weights):
    argv = commands(*MODELS[name])[command] + loading(name, inception_weights)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    written = [tmp_path / a for a in argv[argv.index("-o") + 1:argv.index("-o") + 2]] if "-o" in argv else []
    for path in written:
        manifest = json.loads((path / "manifest.json" if path.suffix != ".png" else path.with_suffix(".json")).read_text())
        assert manifest["model_spec"]["source"] == expected_source(name)
    if command == "layers":
        assert "logits" in out and MODELS[name][1] in out
        row = next(line.split() for line in out.splitlines() if line.split()[:1] == [MODELS[name][1]])
        assert (row[-3:] == ["tokens", "(+1", "apart)"]) == (name == "vit"), row


def test_plumbing_a_vit_token_layer_is_a_grid_with_the_class_token_apart():
    """Random weights: blocks.2 of the ViT-like model outputs 1 + 8x8 tokens of width 32."""
    import torch

    import neuronscope as ns

    model = ns.load(f"{PLUMBING}:vit", device="cpu")
    info = model.layer("blocks.2")
    assert (info.channels, info.spatial, info.prefix_tokens) == (32, (8, 8), 1)
    assert model.fixed_input_size  # fixed position embeddings: captures resize to 64 px
    x = torch.rand(1, 3, 64, 64)
    with ns.capture(model, ["blocks.2"]) as cap:
        grid = cap(x)["blocks.2"]
    with torch.no_grad():
        tokens = {}
        handle = model.submodule("blocks.2").register_forward_hook(lambda m, i, o: tokens.setdefault("t", o))
        try:
            model.module(model.normalize(x))
        finally:
            handle.remove()
    assert torch.equal(cap.prefix_tokens["blocks.2"][0, 0], tokens["t"][0, 0])
    assert torch.equal(grid[0, :, 2, 5], tokens["t"][0, 1 + 2 * 8 + 5])  # row 2, column 5: token 1 + 21
    reading = ns.read_units(model, x, ["blocks.2:5@5,2"])[0]  # x=5, y=2
    assert reading.max == pytest.approx(float(tokens["t"][0, 1 + 2 * 8 + 5, 5]), abs=1e-6)


@pytest.mark.slow
def test_plumbing_a_small_microscope_build_of_each_user_model(tmp_path, inception_weights):
    folder = tmp_path / "images"
    source = bundled_source()
    for i, key in enumerate(source.keys()[::60][:5]):
        save_png(folder / f"{i}.png", source.load(key))
    for name, (spec, layer, earlier, _, _) in MODELS.items():
        out = tmp_path / "gallery"
        # InceptionV1's layers have 480-832 channels: the weights between two of them (for every
        # channel) would dominate this test, so its build shows one layer
        layers = [layer] if name == "inceptionv1" else [earlier, layer]
        code = main(["microscope", spec, "--layers", ",".join(layers), "--units", "2", "--samples", "1",
                     "--steps", "4", "--examples", "3", "--photos", "chelsea", "--source", str(folder),
                     "--out", str(out), "--no-progress", *loading(name, inception_weights)])
        assert code == 0, name
        data = json.loads((out / name / "manifest.json").read_text())
        assert sorted(data["units"]) == sorted(f"{each}:{c}" for each in layers for c in range(2))
        assert data["model_spec"]["source"] == expected_source(name)
        assert (out / name / "photos" / "chelsea.html").is_file() and (out / "index.html").is_file()
