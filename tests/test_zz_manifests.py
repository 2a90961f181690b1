"""Manifests are enough to re-run what they describe. Runs last (file order): it also reads back
every manifest the tests before it wrote under pytest's temporary folder."""
import json
from pathlib import Path

import pytest
import torch

import neuronscope as ns
from neuronscope.cli import main
from neuronscope.featurevis import objectives as obj
from neuronscope.replay import read_manifest, rerender

QUICK = ns.RenderConfig(steps=6, size=48, progress=False)


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


def test_a_cli_render_is_made_again_from_its_manifest_to_the_same_pixels(tmp_path):
    out = tmp_path / "render"
    assert main(["render", "efficientnet_lite0", "blocks.2.1:3", "logits:tabby", "--steps", "6", "--size", "48",
                 "-o", str(out), "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["units"] == ["blocks.2.1:3", "logits:281"]  # addresses, not captions like "logits:281 tabby"
    again = rerender(out / "manifest.json")
    saved = [f for f in manifest["files"]]
    for image, name in zip(again.images, saved):
        import numpy as np
        from PIL import Image

        png = torch.from_numpy(np.asarray(Image.open(out / name).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
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


def test_every_manifest_the_suite_wrote_parses(tmp_path_factory):
    root = tmp_path_factory.getbasetemp()
    manifests = _manifests(root)
    assert manifests, f"no manifests under {root}"
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
