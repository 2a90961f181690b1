"""The gallery's neuron mechanics (``microscope --mechanics``): decomposed feature visualizations on
unit pages, and layer pages sorted by how polysemantic their units' firing looks."""
from __future__ import annotations

import re

import pytest
from gallery_checks import broken_links, make_image_folder, manifest, partial_files

from neuronscope.circuits import firing_cases
from neuronscope.circuits.polysemanticity import polysemanticity
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import GalleryConfig, build_gallery

LAYERS = ("blocks.2.1", "blocks.4.2")


def config(source, **changes) -> GalleryConfig:
    settings = {"layers": LAYERS, "units": 2, "samples": 1, "render": RenderConfig(steps=12, size=64, progress=False),
                "examples": 4, "photos": (), "source": str(source), "progress": False}
    return GalleryConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def built(lite0, tmp_path_factory):
    images = make_image_folder(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("gallery")
    build_gallery(lite0, config(images), out)  # first without mechanics: they are added later
    summary = build_gallery(lite0, config(images, mechanics=True), out)
    return out, summary, images


@pytest.mark.slow
def test_mechanics_are_added_to_a_built_gallery_without_rendering_its_units_again(built):
    out, summary, _ = built
    assert summary.rendered == 0 and summary.timing["mechanics_s"] > 0
    assert broken_links(out) == [] and partial_files(out) == []
    units = manifest(out)["units"]
    for layer, before in zip(LAYERS, ("blocks.2.0", "blocks.4.1")):  # the curated layer just before
        for c in (0, 1):
            d = units[f"{layer}:{c}"]["decomposition"]
            assert d["from"] == before and d["window"] == 5 and 1 <= d["rendered"] <= d["cells"] == 25
            assert (out / "efficientnet_lite0" / layer / str(c) / d["file"]).is_file()
    page = (out / "efficientnet_lite0" / "blocks.4.2" / "1.html").read_text()
    assert "How it is built" in page and "decomposition.png" in page


def test_layer_pages_are_sorted_by_how_polysemantic_their_units_look(built, lite0):
    out, _, images = built
    data = manifest(out)
    gains = {int(c): v for c, v in data["layers"]["blocks.4.2"]["polysemanticity"].items()}
    assert sorted(gains) == [0, 1] and all(0 <= v <= 1 for v in gains.values())
    page = (out / "efficientnet_lite0" / "blocks.4.2" / "index.html").read_text()
    order = [int(c) for c in re.findall(r'<a class="unit" href="(\d+)\.html"', page)]
    assert order == sorted(gains, key=lambda c: -gains[c])
    # the score is firing_cases' own error, with one case and with two
    from neuronscope.data.resolve import resolve_source
    from neuronscope.examples.topk import ExamplesConfig, dataset_examples

    source = resolve_source(str(images))
    examples = dataset_examples(lite0, source, ["blocks.4.2"], ExamplesConfig(k=4, progress=False))["blocks.4.2"]
    x = [source.load(key) for key in dict.fromkeys(e.key for e in examples.top(1))]
    errors = [firing_cases(lite0, "blocks.4.2:1", x, "blocks.4.1", k=k).error for k in (1, 2)]
    assert polysemanticity(lite0, examples, [1], source.load)[1] == pytest.approx(
        (errors[0] - errors[1]) / errors[0], abs=2e-3)


def test_atlas_pages_are_added_per_layer(built, lite0):
    out, _, images = built
    build_gallery(lite0, config(images, mechanics=True, atlas=True), out)
    assert broken_links(out) == [] and partial_files(out) == []
    data = manifest(out)
    for layer in LAYERS:
        atlas = data["layers"][layer]["atlas"]
        assert atlas["grid"] == 2 and atlas["samples"] == 12 * 8 and 1 <= len(atlas["cells"]) <= 4
        assert all(c["count"] > 5 for c in atlas["cells"])
        assert (out / "efficientnet_lite0" / layer / "atlas" / "atlas.png").is_file()
        assert 'href="atlas.html"' in (out / "efficientnet_lite0" / layer / "index.html").read_text()
