"""Notebook display: every result has a one-line repr and, where a cheap picture exists, a capped PNG."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from neuronscope.attribution.dictionary import ActivationGrid, SemanticDictionary
from neuronscope.attribution.factor import class_factors
from neuronscope.attribution.groups import neuron_groups
from neuronscope.attribution.hidden import attribute, attribute_all_classes
from neuronscope.circuits.cases import FiringCases
from neuronscope.circuits.decompose import Decomposition, contributions
from neuronscope.circuits.expanded import expanded_weights
from neuronscope.circuits.factors import weight_factors
from neuronscope.featurevis.render import RenderConfig
from neuronscope.images import DISPLAY_LIMIT, SheetDisplay
from neuronscope.models.model import LayerTable


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).size


def assert_displays(result, *fragments):
    text = repr(result)
    assert "\n" not in text and len(text) <= 200 and "tensor(" not in text and "array(" not in text, text
    assert text.startswith(type(result).__name__ + "("), text
    for fragment in fragments:
        assert fragment in text, text
    size = png_size(result._repr_png_())
    assert max(size) <= DISPLAY_LIMIT and min(size) > 16, size


@pytest.fixture(scope="module")
def chelsea_attribution(lite0):
    return attribute(lite0, ["tabby", "tiger cat"], "chelsea", "act2")


def test_a_big_sheet_is_shrunk_to_the_display_limit():
    class Wide(SheetDisplay):
        def sheet(self):
            return Image.new("RGB", (3000, 600), "white")

    assert png_size(Wide()._repr_png_()) == (DISPLAY_LIMIT, 205)


def test_attribution(chelsea_attribution, lite0):
    assert_displays(chelsea_attribution, "Attribution(act2, 2 targets: tabby +", "tiger cat +")
    assert chelsea_attribution.sheet().size == (3 * (224 + 6) + 6, chelsea_attribution.sheet().size[1])
    everything = attribute_all_classes(lite0, "chelsea", "act2")
    assert_displays(everything, "1000 targets, strongest: ", "…")
    assert png_size(everything._repr_png_())[0] <= DISPLAY_LIMIT  # the strongest 8 only, shrunk


def test_class_factors(lite0):
    factors = class_factors(attribute_all_classes(lite0, "chelsea", "act2"), k=2)
    assert_displays(factors, "2 factors of 1000 classes; 0: ")
    assert factors.image is not None and factors.sheet().size[0] == 4 * (224 + 6) + 6


def test_neuron_groups_and_explained_groups(lite0):
    groups = neuron_groups(lite0, "chelsea", "blocks.4.2", 3)
    assert_displays(groups, "NeuronGroups(blocks.4.2, 3 groups over 14x14 positions, error ")
    explained = groups.explain(lite0, RenderConfig(steps=1, size=96, progress=False))
    assert_displays(explained, "ExplainedGroups(blocks.4.2, 3 groups; attribution to ")
    assert len(explained.shares) == 3 and len(explained.icons.images) == 3


def test_semantic_dictionary_and_activation_grid():
    icons = {c: torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(c)) for c in range(5)}
    channels = np.random.default_rng(0).integers(0, 5, (3, 3, 2))
    values = np.sort(np.random.default_rng(1).random((3, 3, 2)), axis=-1)[..., ::-1].copy()
    dictionary = SemanticDictionary("blocks.5.1", channels, values, icons, torch.rand(3, 64, 64))
    assert_displays(dictionary, "SemanticDictionary(blocks.5.1, 3x3 positions, top 2, 5 channels)")
    grid = ActivationGrid("blocks.5.1", torch.rand(9, 3, 16, 16), torch.rand(3, 3), torch.rand(3, 64, 64))
    assert_displays(grid, "ActivationGrid(blocks.5.1, 3x3 cells of 16 px)")


def test_expanded_weights_and_weight_factors(lite0):
    weights = expanded_weights(lite0, "blocks.3.2.bn2:7", "blocks.3.2.bn1", window=3)
    assert_displays(weights, "ExpandedWeights(blocks.3.2.bn1 -> blocks.3.2.bn2:7, 3x3 window, 480 inputs)")
    family = expanded_weights(lite0, "blocks.3.2.bn2", "blocks.3.2.bn1", window=3)
    assert "(480 channels)" in repr(family)
    factors = weight_factors(family, k=2, outputs=[0, 1, 2])
    assert_displays(factors, "WeightFactors(blocks.3.2.bn1 -> blocks.3.2.bn2 [0, 1, 2], 2 factors, error ")


def test_decomposition_and_contributions(lite0):
    window, side = 3, 16
    parts = Decomposition("blocks.4.0:17", "blocks.3.2", "weights", torch.randn(window, window, 40),
                          torch.rand(window * window, 3, side, side), torch.rand(3, side, side))
    assert_displays(parts, "Decomposition(blocks.4.0:17 from blocks.3.2, 3x3 window, weights)")
    assert parts.sheet().size == parts.preview().size
    explained = contributions(lite0, "blocks.3.2:7", "chelsea", "blocks.3.1")
    with pytest.raises(Exception, match=r"give contributions.explain\(model\)"):
        parts.sheet(explained)  # the row shows the contribution vectors rendered
    assert_displays(explained, "Contributions(blocks.3.2:7@", "from blocks.3.1: bias ", "= linearized ")
    summary = explained.summary()
    assert summary["bias"] + sum(map(sum, summary["contribution_per_cell"])) == pytest.approx(summary["linearized"], rel=1e-4)


def test_firing_cases_have_a_repr_but_no_picture_without_the_model():
    cases = FiringCases("blocks.5.0:112", "blocks.5.0.act2", "nmf", torch.randn(4, 8), torch.tensor([0.48, 0.4, 0.21, -0.06]),
                        torch.randn(209, 8), 0.55, 0.5)
    text = repr(cases)
    assert text == ("FiringCases(blocks.5.0:112 from blocks.5.0.act2, 4 cases (nmf): 48%, 40%, 21%, -6%; "
                    "209 samples, error 0.55)")
    assert not hasattr(cases, "_repr_png_")


def test_model_layers_are_a_tuple_shown_as_an_html_table(lite0):
    layers = lite0.layers
    assert isinstance(layers, LayerTable) and isinstance(layers, tuple)
    assert layers == tuple(layers) and layers[0] is tuple(layers)[0] and list(layers)[-1].name == "logits"
    html = layers._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == len(layers) + 1
    assert "<td>blocks.4.2</td><td>block</td><td>112</td><td>14x14</td>" in html
    assert "<td>logits</td><td>logits</td><td>1000</td><td>-</td>" in html
