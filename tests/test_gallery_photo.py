"""The photo page's interactive Building Blocks interface: its data agrees with the library, and a
browser can hover, ablate and remove groups, from a plain file and through `serve`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gallery_checks import CHROMIUM, broken_images, broken_links, browsing, make_image_folder, manifest, open_page

import neuronscope as ns
from neuronscope.attribution.groups import group_links
from neuronscope.errors import NeuronscopeError
from neuronscope.gallery import GalleryConfig, build_gallery
from neuronscope.readout import layer_activations

LAYERS = ("blocks.4.2", "blocks.5.3")


@pytest.fixture(scope="module")
def built(lite0, tmp_path_factory) -> Path:
    source = make_image_folder(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("gallery")
    config = GalleryConfig(layers=LAYERS, units=2, samples=1, render=ns.RenderConfig(steps=12, size=64, progress=False),
                           examples=4, photos=("chelsea",), caricature_steps=4, source=str(source), progress=False)
    build_gallery(lite0, config, out)
    return out


def _data(out: Path) -> dict:
    text = (out / "efficientnet_lite0" / "photos" / "chelsea" / "interactive.js").read_text()
    return json.loads(text.removeprefix("window.neuronscopePhoto = ").rstrip().removesuffix(";"))


def test_the_interface_holds_each_position_and_the_precomputed_ablations_agree_with_intervene(built, lite0):
    data = _data(built)
    assert [c["label"] for c in data["classes"]] == ["tiger cat", "Egyptian cat", "tabby"]
    assert [layer["name"] for layer in data["layers"]] == list(LAYERS)
    deep = data["layers"][1]
    assert deep["grid"] == [7, 7] and len(deep["top"]) == 49 and len(deep["attribution"]) == 3
    # the strongest unit at each position is the channel with the largest activation there
    acts = layer_activations(lite0, "chelsea", "blocks.5.3")[1].flatten(1)
    assert deep["top"][0][0] == int(acts[:, 0].argmax()) and deep["values"][0][0] == pytest.approx(float(acts[:, 0].max()), abs=1e-2)
    unit = deep["top"][24][0]
    found = ns.intervene(lite0, "chelsea", ns.Ablate(f"blocks.5.3:{unit}"))
    expected = [found.after[k] - found.before[k] for k in (c["index"] for c in data["classes"])]
    assert deep["ablation"][str(unit)] == pytest.approx(expected, abs=2e-4)
    groups = data["groups"]
    assert [s["layer"] for s in groups["sets"]] == list(LAYERS) and np.array(groups["links"]).shape == (4, 4)
    assert manifest(built)["photos"]["chelsea"]["interactive"]["layers"] == list(LAYERS)


def test_chelseas_two_class_parts_name_the_same_cats_so_the_page_shows_each_class(built):
    factors = manifest(built)["photos"]["chelsea"]["factors"]
    assert factors["mode"] == "classes" and factors["shared"] >= 2
    assert [m["label"] for m in factors["maps"]] == ["tiger cat", "Egyptian cat", "tabby"]
    assert broken_links(built) == []


def test_group_links_go_from_earlier_to_later_groups(lite0):
    earlier = ns.neuron_groups(lite0, "chelsea", "blocks.4.2", k=3)
    later = ns.neuron_groups(lite0, "chelsea", "blocks.5.3", k=2)
    links = group_links(lite0, earlier, later)
    assert links.shape == (2, 3) and np.isfinite(links).all() and np.abs(links).sum() > 0
    with pytest.raises(NeuronscopeError, match="does not run before"):
        group_links(lite0, later, earlier)


def _use_the_interface(page, failed: list[str]) -> None:
    """Hover a position, ablate a unit, remove a group: every image loads, each effect shows."""
    page.wait_for_load_state("load")
    canvas = page.locator("#explore canvas")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
    assert page.locator(".panel-title").inner_text().startswith("blocks.5.3 at x=1, y=2")
    page.locator(".layers button", has_text="blocks.4.2").click()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.53, box["y"] + box["height"] * 0.53)
    assert page.locator(".panel-title").inner_text().startswith("blocks.4.2 at x=7, y=7")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert page.locator(".position-units li").count() == 6
    assert broken_images(page) == []
    page.locator(".position-units button.ablate").first.click()
    effect = page.locator(".panel .effect")
    assert effect.is_visible() and "Ablating blocks.4.2:" in effect.inner_text() and "tiger cat" in effect.inner_text()
    page.locator("figure.group button.ablate").first.click()
    assert "Ablating group 0" in page.locator("figure.group .effect").first.inner_text()
    assert page.locator("table.links tr").count() == 5
    assert failed == []


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)")
def test_a_browser_uses_the_interface_from_a_plain_file(built):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    failed: list[str] = []
    with playwright.sync_playwright() as p:
        browser, page = open_page(p, failed)
        page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: failed.append(str(error)))
        try:
            page.goto((built / "efficientnet_lite0" / "photos" / "chelsea.html").as_uri())
            _use_the_interface(page, failed)
        finally:
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)")
def test_a_browser_uses_the_interface_through_serve(built):
    with browsing(built) as (page, url, failed):
        page.on("pageerror", lambda error: failed.append(str(error)))
        page.goto(url + "efficientnet_lite0/photos/chelsea.html")
        _use_the_interface(page, failed)
