"""A gallery of two models (Lite0 and Lite1): comparison pages, similar units across models,
caricatures of the same photo at matched depth, and a browser walking to them."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from gallery_checks import (
    CHROMIUM,
    broken_images,
    broken_links,
    browsing,
    make_image_folder,
    partial_files,
)

import neuronscope as ns
from neuronscope.data.sources import FolderSource
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import (
    GalleryConfig,
    build_galleries,
    compare_views,
)

LAYERS = ("blocks.2.1", "blocks.4.2")
PAIR = "efficientnet_lite0--efficientnet_lite1"


@pytest.fixture(scope="module")
def built(lite0, tmp_path_factory):
    images = make_image_folder(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("gallery")
    config = GalleryConfig(layers=LAYERS, units=2, samples=1, render=RenderConfig(steps=12, size=64, progress=False),
                           examples=4, photos=("chelsea",), caricature_steps=6, source=str(images), atlas=True,
                           progress=False)
    lite1 = ns.load("efficientnet_lite1")
    decoded = Counter()
    load = FolderSource.load

    def counted(self, key):
        decoded[key] += 1
        return load(self, key)

    with pytest.MonkeyPatch.context() as patch:  # 13 files: decoded in this process (no worker processes)
        patch.setattr(FolderSource, "load", counted)
        build_galleries([lite0, lite1], config, out)
    return out, config, [lite0, lite1], decoded


@pytest.mark.slow
def test_one_pass_serves_both_models_their_atlases_and_the_matching(built):
    """Each image is decoded once by the build's one pass (examples of both models, 4 atlases, the
    matches), and the images the views read after it once more at most, for both models at once."""
    out, config, _, decoded = built
    files = sorted(FolderSource(config.source).keys())
    assert sorted(decoded) == files  # every file, the unreadable one too, was read
    assert max(decoded.values()) <= 2 and decoded["broken.jpg"] == 1
    for model in ("efficientnet_lite0", "efficientnet_lite1"):
        data = json.loads((out / model / "manifest.json").read_text())
        assert all("atlas" in data["layers"][layer] for layer in data["layers"] if data["layers"][layer]["info"]["spatial"])


def test_two_models_get_a_comparison_page_and_every_link_resolves(built):
    out, _, _, _ = built
    assert broken_links(out) == [] and partial_files(out) == []
    assert (out / "compare" / f"{PAIR}.html").is_file() and (out / "compare" / PAIR / "similarity.png").is_file()
    assert f"compare/{PAIR}.html" in (out / "index.html").read_text()
    for model in ("efficientnet_lite0", "efficientnet_lite1"):
        assert f"../compare/{PAIR}.html" in (out / model / "index.html").read_text()
    matches = json.loads((out / "compare" / PAIR / "matches.json").read_text())
    # the layers at the same depth are the most alike (linear CKA), both ways
    cka = matches["cka"]
    assert [max(range(2), key=lambda j: row[j]) for row in cka] == [0, 1]
    assert [max(range(2), key=lambda i: cka[i][j]) for j in range(2)] == [0, 1]


def test_unit_pages_list_similar_units_in_the_other_model_with_links(built):
    out, _, _, _ = built
    page = (out / "efficientnet_lite0" / "blocks.4.2" / "1.html").read_text()
    assert "Similar units in other models" in page and "../../efficientnet_lite1/blocks.4.2/" in page
    back = (out / "efficientnet_lite1" / "blocks.2.1" / "0.html").read_text()
    assert "../../efficientnet_lite0/blocks.2.1/" in back


def test_photo_pages_show_the_other_models_caricatures_at_matched_depth(built):
    out, _, _, _ = built
    page = (out / "efficientnet_lite0" / "photos" / "chelsea.html").read_text()
    assert page.count('src="../../efficientnet_lite1/photos/chelsea/caricature_') == 2


def test_a_second_build_reuses_the_matches(built, monkeypatch):
    out, config, models, _ = built
    stored = (out / "compare" / PAIR / "matches.npz").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the matches were computed again")

    monkeypatch.setattr(compare_views, "unit_matching", fail)
    summaries = build_galleries(models, config, out)
    assert [s.rendered for s in summaries] == [0, 0]
    assert (out / "compare" / PAIR / "matches.npz").stat().st_mtime_ns == stored


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium; .ci/run does)")
def test_a_browser_walks_from_the_index_to_a_comparison_and_across_models(built):
    out, _, _, _ = built
    linked = [(layer, c) for layer in LAYERS for c in (0, 1)
              if 'figure class="neighbour"><a href="../../efficientnet_lite1/' in
              (out / "efficientnet_lite0" / layer / f"{c}.html").read_text()]
    assert linked, "no Lite0 unit page links to a rendered Lite1 unit"
    layer, channel = linked[0]
    visited = []
    with browsing(out) as (page, url, failed):
        def arrive() -> None:
            page.wait_for_load_state("load")
            visited.append(page.url.split("/", 3)[-1])
            assert broken_images(page) == [], f"images that did not load on {page.url}"

        page.goto(url + "index.html")
        arrive()
        page.click("a.comparison")
        arrive()
        assert page.locator("img.heatmap").count() == 1
        page.click(f"table.layers a:text-is('{layer}') >> nth=0")
        arrive()
        page.click(f"a.unit[href='{channel}.html']")
        arrive()
        page.click("div.similar figure.neighbour a >> nth=0")
        arrive()
    assert visited[:4] == ["index.html", f"compare/{PAIR}.html", f"efficientnet_lite0/{layer}/index.html",
                           f"efficientnet_lite0/{layer}/{channel}.html"]
    assert visited[4].startswith("efficientnet_lite1/")
    assert failed == []
