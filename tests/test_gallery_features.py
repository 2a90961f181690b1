"""The gallery's dictionary features (issue 24): a features section after a layer, the most
frequent features rendered like units, neurons and features listed on each other's pages."""
from __future__ import annotations

from dataclasses import replace

import pytest
from gallery_checks import CHROMIUM, broken_images, broken_links, browsing, make_image_folder, manifest, partial_files

from neuronscope.dictionaries import Dictionary, DictionaryConfig, feature_neurons
from neuronscope.dictionaries.config import DENSE
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import GalleryConfig, build_gallery

LAYER = "blocks.5.3"
FEATURES = f"{LAYER}.features"


@pytest.fixture(scope="module")
def built(lite0, tmp_path_factory):
    images = make_image_folder(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("gallery")
    config = GalleryConfig(layers=(LAYER,), units=2, samples=1, render=RenderConfig(steps=12, size=64, progress=False),
                           examples=3, photos=(), source=str(images), progress=False,
                           features=DictionaryConfig(epochs=5, progress=False))
    return out, build_gallery(lite0, config, out), config


def test_a_feature_layer_follows_its_layer_with_its_most_frequent_features(built):
    out, summary, _ = built
    data = manifest(out)
    layers = list(data["layers"])
    assert layers.index(FEATURES) == layers.index(LAYER) + 1
    dictionary = Dictionary.load(next((out / "efficientnet_lite0" / "_cache" / "dictionaries").glob("dictionary-*.npz")))
    rates = dictionary.manifest["firing_rates"]
    shown = sorted(int(key.rsplit(":", 1)[1]) for key in data["units"] if key.startswith(FEATURES + ":"))
    frequent = sorted((rate for rate in rates if 0 < rate <= DENSE), reverse=True)[:2]  # ties: any of them
    assert sorted((rates[f] for f in shown), reverse=True) == frequent and summary.rendered == 4  # 2 neurons, 2 features
    record = data["layers"][FEATURES]
    assert record["dictionary"]["fingerprint"] == dictionary.fingerprint and record["dictionary"]["parent"] == LAYER
    assert 0 < record["dictionary"]["quality"]["explained_variance"] < 1
    for f in shown:
        listed = record["made_of"][str(f)]
        expected = feature_neurons(dictionary, f, len(listed))
        assert [c for c, _, _ in listed] == [c for c, _ in expected]
        assert sum(share for _, _, share in listed) <= 1.0001  # shares of one unit-length direction
    assert broken_links(out) == [] and partial_files(out) == []


def test_feature_and_neuron_pages_link_each_other(built):
    out, _, _ = built
    model = out / "efficientnet_lite0"
    data = manifest(out)
    feature = next(key.rsplit(":", 1)[1] for key in data["units"] if key.startswith(FEATURES + ":"))
    page = (model / FEATURES / f"{feature}.html").read_text()
    assert "Made of" in page and "Feature visualization" in page and "Dataset examples" in page
    neuron = (model / LAYER / "0.html").read_text()
    assert "Takes part in" in neuron and f"../{FEATURES}/" in neuron
    listed = data["layers"][LAYER]["features_of"]["units"]["0"]
    assert [f for f, _, _ in listed] and all(f"{FEATURES}:{f}" not in data["units"] or f"../{FEATURES}/{f}.html" in neuron
                                             for f, _, _ in listed)
    layer_page = (model / FEATURES / "index.html").read_text()
    assert "explained variance" in layer_page and "Neurons per feature" in layer_page
    assert f"../{FEATURES}/index.html" in (model / LAYER / "index.html").read_text()


def test_a_build_without_features_resumes_and_keeps_the_feature_pages(built, lite0):
    out, _, config = built
    before = manifest(out)
    summary = build_gallery(lite0, replace(config, features=None), out)
    assert summary.rendered == 0 and manifest(out)["units"].keys() == before["units"].keys()
    assert broken_links(out) == []
    again = build_gallery(lite0, config, out)  # and with them again: the dictionary comes from its cache
    assert again.rendered == 0


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)")
def test_a_browser_goes_from_a_layer_to_its_features_and_every_image_loads(built):
    out, _, _ = built
    with browsing(out) as (page, url, failed):
        page.goto(url + "efficientnet_lite0/index.html")
        page.click(f"table.layers a:text-is('{LAYER}')")
        page.click(f"a:text-is('Dictionary features of {LAYER}')")
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text() == FEATURES and "explained variance" in page.content()
        page.click("a.unit >> nth=0")
        page.wait_for_load_state("load")
        assert page.locator("h1").inner_text().startswith(FEATURES + ":")
        assert page.locator("section.neighbours h3").first.inner_text().startswith("Made of")
        assert broken_images(page) == [] and page.evaluate("document.images.length") > 8
    assert failed == []
