"""Image sizes chosen per unit: classes at the model's input size, channels of spatial layers at 128."""
import numpy as np
import torch
from PIL import Image
from torch import nn

import neuronscope as ns
from neuronscope.featurevis.render import RenderConfig, render, render_units
from neuronscope.featurevis.sizing import (
    DEFAULT_SIZE,
    layers_read_whole_image,
    reads_whole_image,
    unit_size,
)
from neuronscope.images import to_pil
from neuronscope.units import parse_unit

GAP = 6
"""Pixels between the cells of a contact sheet (``images.contact_sheet``)."""


def test_units_that_read_the_whole_image_get_the_input_size(lite0):
    assert reads_whole_image(lite0, "logits") and not reads_whole_image(lite0, "blocks.4.2")
    assert unit_size(lite0, parse_unit(lite0, "logits:tabby")) == 224
    assert unit_size(lite0, parse_unit(lite0, "blocks.4.2:3")) == DEFAULT_SIZE
    assert layers_read_whole_image(lite0, ["blocks.2.1", "logits"]) and not layers_read_whole_image(lite0, ["blocks.2.1"])


def test_a_mixed_render_makes_each_unit_at_its_own_size():
    """Plumbing (random weights): a pooled layer and the logits at the input size (48), a spatial
    channel at the default, in one call; the manifest records each item's size."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    model = ns.wrap(net, input_size=48)
    result = render_units(model, ["logits:2", "0:1"], RenderConfig(steps=2, progress=False))
    sizes = {unit: image.shape[-1] for unit, image in zip(result.manifest["units"], result.images)}
    assert sizes == {"logits:2": 48, "0:1": DEFAULT_SIZE}
    assert result.manifest["sizes"] == [sizes[u] for u in result.manifest["units"]]
    assert isinstance(result.images, list) and len(result) == 2
    # the sheet shows each image whole, scaled to one cell of the larger size, in unit order
    sheet = np.asarray(result.sheet().convert("RGB"), dtype=np.int16)
    assert sheet.shape[1] == 2 * (DEFAULT_SIZE + GAP) + GAP
    for i, image in enumerate(result.images):
        x = GAP + i * (DEFAULT_SIZE + GAP)
        shown = sheet[GAP : GAP + DEFAULT_SIZE, x : x + DEFAULT_SIZE]
        expected = np.asarray(to_pil(image).resize((DEFAULT_SIZE,) * 2, Image.Resampling.LANCZOS), dtype=np.int16)
        assert np.abs(shown - expected).max() <= 1, result.manifest["units"][i]
    single = render(model, ns.objectives.class_logit(2), RenderConfig(steps=2, progress=False))
    assert single.images.shape[-1] == 48 and single.manifest["config"]["size"] == 48
