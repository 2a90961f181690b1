"""Interpretability scores in the gallery (``GalleryConfig.scores``, ``microscope --scores``): every
channel of a layer scored beside random directions, verdicts on unit pages, layer pages sorted by
score, means on the model page; convergence of every render; resuming without scores."""
from __future__ import annotations

from dataclasses import replace

import pytest
from gallery_checks import CHROMIUM, broken_images, broken_links, browsing, manifest, partial_files

from neuronscope.dictionaries import DictionaryConfig
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import GalleryConfig, build_gallery
from neuronscope.gallery.score_views import RANDOM_SCORED
from neuronscope.interpretability import ScoreConfig

LAYER = "blocks.0.0"  # 16 channels: the layer and its 16 random directions are 32 units to score
FEATURES = f"{LAYER}.features"
SCORES = ScoreConfig(tasks=10, references=3, query_from=5, pool=10, similarity_size=32, progress=False)
"""Far smaller than the defaults (a quarter of the crops, 32 px instead of 128) to keep the test short."""


@pytest.fixture(scope="module")
def built(lite0, tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    config = GalleryConfig(layers=(LAYER,), units=4, samples=2, render=RenderConfig(steps=24, size=64, progress=False),
                           examples=3, photos=(), progress=False, scores=SCORES,
                           features=DictionaryConfig(epochs=2, positions=16, finetune_epochs=0, report=False, progress=False))
    return out, build_gallery(lite0, config, out), config


def _scores(out, layer: str = LAYER) -> dict:
    return manifest(out)["layers"][layer]["scores"]


@pytest.mark.slow
def test_every_channel_is_scored_beside_random_directions_and_rendered_units_by_their_pictures(built, lite0):
    out, summary, _ = built
    scores = _scores(out)
    assert sorted(map(int, scores["units"])) == list(range(lite0.layer(LAYER).channels))
    for record in scores["units"].values():
        assert record["constant"] or 0 <= record["score"] <= 1 and 0 <= record["right"] <= 1
        assert record["verdict"] in ("clear", "mixed", "unclear", "constant (dead): not scored")
    assert all(0 <= scores["units"][str(c)]["visual_score"] <= 1 for c in range(4))  # the rendered ones
    assert scores["units"]["4"]["visual_score"] is None
    means = scores["means"]
    assert all(0 < means[kind] < 1 for kind in ("neurons", "random", "features", "visual"))
    assert scores["random_scored"] == RANDOM_SCORED and scores["similarity"] == "efficientnet_lite2"
    assert summary.timing["scores_s"] > 0 and scores["timing"]["total_s"] > 0
    units = manifest(out)["units"]
    features = _scores(out, FEATURES)["units"]  # the shown features, each with a score from its pictures too
    assert sorted(features) == sorted(key.rsplit(":", 1)[1] for key in units if key.startswith(FEATURES + ":"))
    assert len(features) == 4 and all(0 <= f["score"] <= 1 and 0 <= f["visual_score"] <= 1 for f in features.values())
    assert all(len(units[f"{LAYER}:{c}"]["converged"]) == 2 for c in range(4))
    assert all(isinstance(v, bool) for c in range(4) for v in units[f"{LAYER}:{c}"]["converged"])
    assert broken_links(out) == [] and partial_files(out) == []


@pytest.mark.slow
def test_pages_show_the_verdict_the_baseline_and_convergence(built):
    out, _, _ = built
    model = out / "efficientnet_lite0"
    scores, units = _scores(out), manifest(out)["units"]
    page = (model / LAYER / "1.html").read_text()
    unit = scores["units"]["1"]
    assert f"{unit['score']:.2f}</strong>" in page and f">{unit['verdict']}<" in page
    assert f"{unit['visual_score']:.2f}" in page and "two-choice score, uncalibrated (0.5 = chance)</a>" in page
    assert page.count("<figcaption class=") == 2
    assert ("still rising at the end: more steps may change it" in page) == (False in units[f"{LAYER}:1"]["converged"])
    layer_page = (model / LAYER / "index.html").read_text()
    assert f"{scores['means']['neurons']:.2f}" in layer_page and 'data-order="score"' in layer_page
    index = (model / "index.html").read_text()
    assert 'id="scores"' in index
    assert all(f"{scores['means'][kind]:.2f}" in index for kind in ("random", "features", "visual"))
    assert 'data-order="score"' in (model / FEATURES / "index.html").read_text()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)")
def test_a_browser_sorts_a_layer_by_score_from_a_plain_file(built):
    out, _, _ = built
    scores = _scores(out)["units"]
    shown = [0, 1, 2, 3]
    by_score = sorted(shown, key=lambda c: (-scores[str(c)]["score"], c))
    assert by_score != shown  # (0.85, 0.84, 0.86, 0.83 when written) else sorting would show nothing
    with browsing(out) as (page, url, failed):
        page.goto((out / "efficientnet_lite0" / LAYER / "index.html").as_uri())  # file://, no server
        order = lambda: [int(h.removesuffix(".html")) for h in page.eval_on_selector_all(  # noqa: E731
            "a.unit", "units => units.map(u => u.getAttribute('href'))")]
        assert order() == shown
        page.click("button[data-order=score]")
        assert order() == by_score
        page.click("button[data-order=default]")
        assert order() == shown
        page.goto(url + f"efficientnet_lite0/{LAYER}/{by_score[0]}.html")
        assert "Interpretability score" in page.locator("section.score h2").inner_text()
        assert broken_images(page) == []
        page.click("a:text-is('two-choice score, uncalibrated (0.5 = chance)')")
        page.wait_for_load_state("load")
        assert page.locator("table.scores tbody tr").count() == 1 and broken_images(page) == []
    assert failed == []


@pytest.mark.slow
def test_a_build_without_scores_resumes_keeps_them_and_one_with_them_does_not_score_again(built, lite0):
    out, _, config = built
    before = manifest(out)
    summary = build_gallery(lite0, replace(config, scores=None), out)
    after = manifest(out)
    assert summary.rendered == 0 and "scores_s" not in summary.timing
    assert after["layers"][LAYER]["scores"] == before["layers"][LAYER]["scores"]  # timing included: not scored again
    assert "Interpretability score" in (out / "efficientnet_lite0" / LAYER / "0.html").read_text()
    assert 'id="scores"' in (out / "efficientnet_lite0" / "index.html").read_text()
    again = build_gallery(lite0, config, out)
    assert again.rendered == 0 and again.timing["scores_s"] < 1
    assert manifest(out)["layers"][LAYER]["scores"] == before["layers"][LAYER]["scores"]


def test_microscope_scores_sets_a_score_config(monkeypatch, zoo_loaded_once, tmp_path):
    from neuronscope.cli import main
    from neuronscope.gallery import build as gallery_build
    from neuronscope.gallery.model_build import BuildSummary

    seen = []

    def fake(models, config, out, engine):
        seen.append(config)
        return [BuildSummary(tmp_path)]

    monkeypatch.setattr(gallery_build, "build_galleries", fake)
    assert main(["microscope", "--scores", "--no-progress", "-o", str(tmp_path)]) == 0
    assert main(["microscope", "-o", str(tmp_path)]) == 0
    assert seen[0].scores == ScoreConfig(progress=False) and seen[1].scores is None
