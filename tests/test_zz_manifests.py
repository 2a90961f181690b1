"""Manifests are enough to re-run what they describe. Self-contained: the outputs it reads are made
here, one of each kind the CLI writes cheaply, so it passes alone and in any order; run with the
suite, it also reads back every manifest the tests before it wrote under pytest's temporary folder."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuronscope as ns
from neuronscope.cli import main
from neuronscope.featurevis import objectives as obj
from neuronscope.featurevis.caricature import CaricatureConfig
from neuronscope.replay import read_manifest, rerender

QUICK = ns.RenderConfig(steps=6, size=48, progress=False)
COMMANDS = {
    "render": ["render", "efficientnet_lite0", "blocks.2.1:3", "logits:tabby", "--steps", "6", "--size", "48",
               "--no-progress"],
    "caricature.png": ["caricature", "chelsea", "--layers", "blocks.2.1", "--steps", "2", "--size", "32", "--no-progress"],
    "attributive.png": ["caricature", "chelsea", "--layers", "blocks.3.1", "--class", "tabby", "--steps", "2", "--size", "32",
                        "--no-progress"],
    "accentuation.png": ["accentuate", "chelsea", "blocks.3.0:2", "--steps", "2", "--size", "48", "--no-progress"],
    "attribution.png": ["attribute", "chelsea", "--classes", "tabby,espresso"],
    "mechanics.png": ["mechanics", "efficientnet_lite0", "blocks.4.0:17", "--image", "chelsea", "--steps", "2", "--no-progress"],
}
"""Outputs made here, by name: a render folder; the others a picture with its manifest beside it."""


@pytest.fixture(scope="module")
def written(tmp_path_factory, zoo_loaded_once) -> dict[str, Path]:
    """Each command of ``COMMANDS`` run once into a folder of this module: name -> its manifest file."""
    root = tmp_path_factory.mktemp("manifests")
    for name, argv in COMMANDS.items():
        assert main([*argv, "-o", str(root / name)]) == 0, argv
    return {name: root / name / "manifest.json" if name == "render" else (root / name).with_suffix(".json")
            for name in COMMANDS}


def _manifests(root: Path) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(root.rglob("*.json")):
        if "_cache" in path.parts:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and "kind" in data and "versions" in data:
            found.append((path, data))
    return found


def test_each_kind_of_cli_manifest_parses_into_what_was_asked(written):
    recipes = {name: read_manifest(path) for name, path in written.items()}
    render = recipes["render"]
    assert render.kind == "render" and [str(u) for u in render.units] == ["blocks.2.1:3", "logits:281"]
    assert isinstance(render.config, ns.RenderConfig) and (render.config.steps, render.config.size) == (6, 48)
    plain = recipes["caricature.png"]
    assert plain.kind == "caricature" and isinstance(plain.config, CaricatureConfig) and plain.config.steps == 2
    (attributive,) = recipes["attributive.png"].parts
    assert [str(t) for t in attributive.targets] == ["logits:281"] and isinstance(attributive.config, CaricatureConfig)
    assert [str(u) for u in recipes["accentuation.png"].units] == ["blocks.3.0:2"]
    assert [str(t) for t in recipes["attribution.png"].targets] == ["logits:281", "logits:967"]  # tabby, espresso
    unit, neuron = recipes["mechanics.png"].units  # the unit, and the neuron of it the photo shows
    assert str(unit) == "blocks.4.0:17" and (neuron.layer, neuron.channel) == ("blocks.4.0", 17) and neuron.position
    assert isinstance(recipes["mechanics.png"].config, ns.RenderConfig) and recipes["mechanics.png"].config.steps == 2


def test_a_cli_render_is_made_again_from_its_manifest_to_the_same_pixels(written):
    manifest = json.loads(written["render"].read_text())
    assert manifest["units"] == ["blocks.2.1:3", "logits:281"]  # addresses, not captions like "logits:281 tabby"
    again = rerender(written["render"])
    for image, name in zip(again.images, manifest["files"]):
        png = Image.open(written["render"].parent / name).convert("RGB")
        png = torch.from_numpy(np.asarray(png, dtype=np.float32) / 255).permute(2, 0, 1)
        assert (image - png).abs().max() <= 0.5 / 255 + 1e-6  # the PNG's rounding only
    assert again.labels == manifest["labels"]


def test_an_objective_with_a_direction_vector_is_rebuilt_from_its_spec(lite0):
    vector = torch.randn(80, generator=torch.Generator().manual_seed(3))
    objective = obj.direction("blocks.3.0", vector, cosine_power=1.0, batch=0) + obj.channel("blocks.3.0", 5, batch=1) \
        - 0.01 * obj.total_variation()
    result = ns.render(lite0, objective, QUICK, batch=2)
    data = json.loads(json.dumps(result.manifest))  # as written to disk
    rebuilt = read_manifest(data).objective
    acts = {"blocks.3.0": torch.rand(2, 80, 6, 6), "input": torch.rand(2, 3, 48, 48)}
    torch.testing.assert_close(rebuilt(acts), objective(acts))
    torch.testing.assert_close(rerender(data).images, result.images, atol=0, rtol=0)


def test_a_custom_function_objective_says_it_cannot_be_rebuilt(lite0):
    custom = ns.objectives.Objective(lambda acts: acts["blocks.2.1"].mean((1, 2, 3)), ("blocks.2.1",), "mean of blocks.2.1")
    result = ns.render(lite0, custom, ns.RenderConfig(steps=2, size=32, progress=False))
    assert result.manifest["rebuildable"] is False
    with pytest.raises(ns.NeuronscopeError, match="custom function"):
        rerender(result.manifest)


def test_a_manifest_with_a_caption_for_a_unit_is_rejected():
    with pytest.raises(ns.NeuronscopeError):
        read_manifest({"kind": "render", "model": "efficientnet_lite0", "units": ["logits:281 tabby"], "versions": {}})


def test_every_manifest_the_suite_wrote_parses(tmp_path_factory, written):
    """Every manifest under pytest's temporary folder: at least this module's own, and, after
    the rest of the suite, every one the other tests wrote."""
    root = tmp_path_factory.getbasetemp()
    manifests = _manifests(root)
    assert written["render"] in {path for path, _ in manifests}, f"this module's render is not under {root}"
    kinds, loaded = set(), {}
    for path, data in manifests:
        try:
            recipe = read_manifest(data, loaded=loaded)
        except ns.NeuronscopeError as error:
            raise AssertionError(f"{path}: {error}") from None
        kinds.add(recipe.kind)
        if data["kind"] == "render" and "config" in data:
            assert isinstance(recipe.config, ns.RenderConfig), path
    assert "render" in kinds
