"""Attribution and circuits results: `.sheet()` only draws what the result holds (no model, no
forward or backward pass, no render), and `.save(path)` writes the sheet with the manifest that the
function which made the result set (model, unit or image, layers, settings, versions)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from neuronscope.attribution.groups import neuron_groups
from neuronscope.attribution.hidden import attribute
from neuronscope.circuits.cases import firing_cases
from neuronscope.circuits.decompose import MechanicsConfig, contributions, decompose
from neuronscope.circuits.expanded import expanded_weights
from neuronscope.featurevis.render import RenderConfig
from neuronscope.replay import read_manifest

TINY = RenderConfig(steps=1, size=32, progress=False)


@pytest.fixture
def no_model_runs(monkeypatch):
    """Any call of any torch module (a forward pass, a render) fails while this is active."""
    def refuse(*args, **kwargs):
        raise AssertionError("a sheet ran a model")

    monkeypatch.setattr(torch.nn.Module, "__call__", refuse)


def saved(result, path, *args):
    """Save ``result`` and read back its PNG's size and its manifest."""
    written = result.save(path, *args)
    assert written == path and path.with_suffix(".json").exists()
    with Image.open(path) as picture:
        size = picture.size
    return size, json.loads(path.with_suffix(".json").read_text())


def test_expanded_weights_are_explained_first_and_then_drawn_and_saved(lite0, tmp_path, request):
    weights = expanded_weights(lite0, "blocks.3.2.bn2:7", "blocks.3.2.bn1", window=3)
    assert weights.manifest["unit"] == "blocks.3.2.bn2:7" and weights.manifest["window"] == 3
    shown = weights.explain(lite0, top=2, config=TINY)
    assert len(shown.icons.images) == 3 and shown.inputs == weights.top_inputs(0, 2)
    request.getfixturevalue("no_model_runs")
    plain, full = weights.sheet(top=2), shown.sheet()
    assert full.width == plain.width and full.height > plain.height  # the rendered row above the weights
    size, manifest = saved(shown, tmp_path / "weights.png")
    assert size == full.size
    assert manifest["model"] == "efficientnet_lite0" and manifest["source"] == "blocks.3.2.bn1"
    np.testing.assert_allclose(np.array(manifest["top_inputs"]), np.array(shown.inputs), rtol=1e-6)
    assert manifest["render"]["steps"] == 1 and read_manifest(manifest, lite0).units[0].channel == 7


def test_a_decomposition_with_contributions_is_drawn_without_the_model(lite0, tmp_path, request):
    config = MechanicsConfig(render=TINY)
    parts = decompose(lite0, "blocks.3.2.bn2:7", "blocks.3.2.bn1", config)
    explained = contributions(lite0, parts.unit, "chelsea", parts.source)
    assert explained.manifest["image"] == "chelsea" and explained.manifest["neuron"] == explained.unit
    row = explained.explain(lite0, config)
    request.getfixturevalue("no_model_runs")
    top, both = parts.sheet(), parts.sheet(row)
    assert both.width == top.width and both.height > top.height
    size, manifest = saved(parts, tmp_path / "mechanics.png", row)
    assert size == both.size and manifest["unit"] == "blocks.3.2.bn2:7" and manifest["image"] == "chelsea"
    assert manifest["bias"] + np.sum(manifest["contribution_per_cell"]) == pytest.approx(manifest["linearized"], rel=1e-4)
    np.testing.assert_allclose(np.array(manifest["magnitudes"]), parts.magnitudes.numpy(), rtol=1e-6)


def test_firing_cases_and_neuron_groups_render_in_explain_not_in_sheet(lite0, tmp_path, request):
    images = torch.cat([lite0.input(name) for name in ("chelsea", "coffee", "astronaut", "rocket")])
    cases = firing_cases(lite0, "blocks.4.0:17", images, "blocks.4.0.act2", k=2)
    assert cases.manifest["images"] == "a batch of 4 images given in Python" and cases.manifest["k"] == 2
    shown_cases = cases.explain(lite0, TINY)
    groups = neuron_groups(lite0, "chelsea", "blocks.4.2", 2)
    shown_groups = groups.explain(lite0, TINY)
    request.getfixturevalue("no_model_runs")
    size, manifest = saved(shown_cases, tmp_path / "cases.png")
    assert size == shown_cases.sheet().size and manifest["shares"] == pytest.approx(cases.shares.tolist())
    size, manifest = saved(shown_groups, tmp_path / "groups.png")
    assert size == shown_groups.sheet().size and manifest["image"] == "chelsea"
    assert manifest["attribution_to_top_class"] == pytest.approx(shown_groups.shares.tolist())
    assert groups.sheet().size[1] < shown_groups.sheet().size[1]  # no rendered row


def test_an_attribution_saves_its_sums_with_its_sheet(lite0, tmp_path):
    result = attribute(lite0, ["tabby", "espresso"], "chelsea")  # the layer defaults to the head: act2
    size, manifest = saved(result, tmp_path / "attribution.png")
    assert result.layer == "act2" and size[0] == result.sheet().size[0]
    assert manifest["targets"] == ["tabby", "espresso"] and manifest["image"] == "chelsea"
    assert manifest["totals"] == pytest.approx(result.total.tolist()) and manifest["logit_agreement"] is None
