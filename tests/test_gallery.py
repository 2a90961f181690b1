"""The gallery: a real (small) build on Lite0, resuming, extending, killing, bad input, a browser."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from gallery_checks import (
    CHROMIUM,
    broken_images,
    broken_links,
    browsing,
    cli,
    make_image_folder,
    manifest,
    partial_files,
)

from neuronscope import NeuronscopeError
from neuronscope.data.photos import load_image, photo_path
from neuronscope.data.sources import bundled_source
from neuronscope.featurevis.caricature import CaricatureConfig, caricature
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import (
    GalleryConfig,
    build_gallery,
    make_server,
)
from neuronscope.gallery.photo_views import _caricatures
from neuronscope.gallery.plan import chunks, spatial
from neuronscope.images import save_png
from neuronscope.models.depth import representative_layers

LAYERS = ("blocks.2.1", "blocks.4.2")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Twelve bundled crops as PNG files in nested folders, and one corrupt file."""
    return make_image_folder(tmp_path_factory.mktemp("images"))


def small_config(source: Path, **changes) -> GalleryConfig:
    settings = {"layers": LAYERS, "units": 2, "samples": 2, "render": RenderConfig(steps=12, size=64, progress=False),
                "examples": 4, "photos": ("chelsea",), "caricature_steps": 6, "source": str(source), "progress": False}
    return GalleryConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def built(lite0, image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    config = small_config(image_folder)
    return out, build_gallery(lite0, config, out), config


@pytest.mark.slow
def test_a_build_writes_every_page_and_every_link_resolves(built):
    out, summary, _ = built
    model = out / "efficientnet_lite0"
    expected = ["index.html", "style.css", "efficientnet_lite0/index.html", "efficientnet_lite0/photos/chelsea.html"]
    expected += [f"efficientnet_lite0/{layer}/{page}" for layer in LAYERS for page in ("index.html", "0.html", "1.html")]
    assert [p for p in expected if not (out / p).is_file()] == []
    assert broken_links(out) == []
    assert partial_files(out) == []
    data = manifest(out)
    assert sorted(data["units"]) == sorted(f"{layer}:{c}" for layer in LAYERS for c in (0, 1))
    assert summary.rendered == 4 and summary.photos == 1
    assert summary.skipped_images and summary.skipped_images[0][0].endswith("broken.jpg")
    for key, record in data["units"].items():
        layer, channel = key.split(":")
        assert len(record["fv"]) == 2 and len(record["top"]) == 4
        assert all((model / layer / channel / name).is_file() for name in record["fv"])
        values = [e["value"] for e in record["top"]]
        assert values == sorted(values, reverse=True) and values[0] == pytest.approx(record["dataset_max"])
    # the neighbouring layers' weights link the two layers both ways
    assert data["layers"]["blocks.4.2"]["inputs_from"] == "blocks.2.1"
    assert len(data["layers"]["blocks.4.2"]["inputs"]["0"]) == 6


def test_unit_pages_show_their_views(built):
    out, _, _ = built
    page = (out / "efficientnet_lite0" / "blocks.4.2" / "1.html").read_text()
    assert "Feature visualization" in page and "Dataset examples" in page and "Built from" in page
    assert 'src="1/fv_0.png"' in page and 'src="1/top_0.png"' in page
    photo = (out / "efficientnet_lite0" / "photos" / "chelsea.html").read_text()
    assert "Caricatures" in photo and "tiger cat" in photo  # Lite0's top class for chelsea
    assert "random crops and rescales" in page  # how much of the unit's response survives other views
    layers = manifest(out)["layers"]
    assert "class_method" not in layers["blocks.2.1"]  # the shallow half gets no class views
    deep = layers["blocks.4.2"]  # one-step attribution ranks classes poorly here; integrated gradients do
    assert deep["agreements"]["integrated gradients"] > deep["agreements"]["activation x gradient"]
    assert deep["class_method"] == "integrated gradients" and deep["agreement"] >= 0.8
    assert sorted(deep["classes"]) == ["0", "1"] and "(integrated gradients)" in page
    robustness = [record["robustness"] for record in manifest(out)["units"].values()]
    assert all(r is None or -5 < r < 5 for r in robustness) and any(r is not None for r in robustness)


def test_weight_strips_show_shares_and_pages_of_older_manifests_their_raw_weights(built, tmp_path):
    import shutil

    from neuronscope.gallery.pages import Pages

    out, _, config = built
    data = manifest(out)
    page = (out / "efficientnet_lite0" / "blocks.4.2" / "1.html").read_text()
    listed = data["layers"]["blocks.4.2"]["inputs"]["1"]
    shares = [share for _, _, share in listed]
    assert all(0 < s <= 1 for s in shares) and shares == sorted(shares, reverse=True) and sum(shares) <= 1
    for channel, strength, share in listed:  # the share is shown, the raw weight is on hover
        assert (f'title="expanded weight {strength:+.4g} (window norm, sign of the sum): {100 * share:.2f} % '
                f"of the unit's weights with blocks.2.1 (squared norm)\">{'+' if strength > 0 else '−'}") in page
    outputs = data["layers"]["blocks.4.2"].get("outputs", {}).get("1", [])
    assert page.count('<span class="share">') == len(listed) + len(outputs)
    assert "so all its channels make 100 %" in page
    # a gallery written before shares ([channel, strength] entries) still gets its pages, with raw weights
    old = shutil.copytree(out, tmp_path / "old")
    for record in data["layers"].values():
        for key in ("inputs", "outputs"):
            for entries in record.get(key, {}).values():
                entries[:] = [entry[:2] for entry in entries]
    Pages(old).write_all(data, config.source)
    page = (old / "efficientnet_lite0" / "blocks.4.2" / "1.html").read_text()
    assert all(f"{strength:+.2f}</span>" in page for _, strength in data["layers"]["blocks.4.2"]["inputs"]["1"])
    assert '<span class="share">' not in page and "channels make 100 %" not in page


def test_a_second_build_reuses_everything(built, lite0):
    out, _, config = built
    before = manifest(out)["units"]
    again = build_gallery(lite0, config, out)
    assert (again.rendered, again.reused, again.photos) == (0, 4, 0)
    assert manifest(out)["units"] == before


def test_extending_a_build_renders_only_the_new_units(built, lite0):
    out, _, config = built
    first_run = manifest(out)["units"]["blocks.2.1:0"]["run"]
    from dataclasses import replace

    more = build_gallery(lite0, replace(config, units=3), out)
    data = manifest(out)
    assert more.rendered == 2 and "blocks.2.1:2" in data["units"] and "blocks.4.2:2" in data["units"]
    assert data["units"]["blocks.2.1:0"]["run"] == first_run
    assert broken_links(out) == []


def test_changed_settings_are_refused(built, lite0):
    out, _, config = built
    from dataclasses import replace

    with pytest.raises(NeuronscopeError, match="samples"):
        build_gallery(lite0, replace(config, samples=3), out)


def test_bad_input_gets_clear_errors(lite0, image_folder, tmp_path):
    with pytest.raises(NeuronscopeError, match="did you mean"):
        build_gallery(lite0, small_config(image_folder, layers=("blocks.4.9",)), tmp_path / "g")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NeuronscopeError, match="no image files"):
        build_gallery(lite0, small_config(empty), tmp_path / "g")
    with pytest.raises(NeuronscopeError, match="not found|does not exist|missing"):
        build_gallery(lite0, small_config(tmp_path / "nowhere"), tmp_path / "g")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NeuronscopeError, match="is a file"):
        build_gallery(lite0, small_config(image_folder), tmp_path / "file")
    with pytest.raises(NeuronscopeError, match="units"):
        GalleryConfig(units=0)


@pytest.mark.slow
def test_a_full_disk_stops_cleanly_and_keeps_what_was_done(lite0, image_folder, tmp_path, monkeypatch):
    import neuronscope.manifest as manifest_module

    real_replace = os.replace
    writes = {"left": 35}

    def replace_until_full(source, target):
        writes["left"] -= 1
        if writes["left"] < 0:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real_replace(source, target)

    monkeypatch.setattr(manifest_module.os, "replace", replace_until_full)
    out = tmp_path / "g"
    with pytest.raises(NeuronscopeError, match="no space left"):
        build_gallery(lite0, small_config(image_folder, photos=()), out)
    monkeypatch.setattr(manifest_module.os, "replace", real_replace)
    data = manifest(out)  # still valid JSON
    folder = out / "efficientnet_lite0"
    assert data["units"], "the first chunk should have been recorded before the disk filled up"
    for key, record in data["units"].items():
        layer, channel = key.split(":")
        assert all((folder / layer / channel / name).is_file() for name in record["fv"])
    assert partial_files(out) == []
    resumed = build_gallery(lite0, small_config(image_folder, photos=()), out)
    assert resumed.rendered == 4 - len(data["units"])


@pytest.mark.slow
def test_kill_and_resume_renders_every_unit_exactly_once(image_folder, tmp_path):
    out = tmp_path / "g"
    args = cli("microscope", "--layers", "blocks.2.1", "--units", "24", "--samples", "4", "--steps", "4",
                "--photos", "", "--source", str(image_folder), "--out", str(out), "--no-progress")
    path = out / "efficientnet_lite0" / "manifest.json"
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            try:
                if len(json.loads(path.read_text())["units"]) >= 4:
                    break
            except (OSError, json.JSONDecodeError, KeyError):
                pass
            time.sleep(0.05)
        assert process.poll() is None, f"the build ended before it could be killed: {process.stderr.read().decode()}"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    first = json.loads(path.read_text())
    done_before = {key: record["run"] for key, record in first["units"].items()}
    assert 4 <= len(done_before) < 24
    finished = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert finished.returncode == 0, finished.stderr
    data = json.loads(path.read_text())
    assert sorted(data["units"]) == sorted(f"blocks.2.1:{c}" for c in range(24))
    second_run = data["runs"][-1]
    assert second_run["finished"] and second_run["rendered"] == 24 - len(done_before)
    for key, record in data["units"].items():
        expected_run = done_before.get(key, second_run["id"])
        assert record["run"] == expected_run, key  # rendered once: by the first run or by the second
        assert all((out / "efficientnet_lite0" / "blocks.2.1" / key.split(":")[1] / f).is_file() for f in record["fv"])
    assert partial_files(out) == []
    assert [c for c in range(24) if not (out / "efficientnet_lite0" / "blocks.2.1" / f"{c}.html").is_file()] == []
    assert broken_links(out) == []


def test_representative_layers_are_stage_ends(lite0):
    layers = representative_layers(lite0)
    assert layers == ["blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2", "blocks.5.3", "blocks.6.0"]


def test_chunks_are_runs_of_consecutive_channels():
    assert chunks([9, 0, 1, 2, 5, 6], 2) == [[0, 1], [2], [5, 6], [9]]
    assert chunks(list(range(6)), 5) == [[0, 1, 2], [3, 4, 5]]  # even chunks, none of one unit
    assert [len(c) for c in chunks(list(range(11)), 5)] == [4, 4, 3]


def test_serve_binds_loopback_and_refuses_folders_without_a_gallery(built, tmp_path):
    out, _, _ = built
    server = make_server(out, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    with pytest.raises(NeuronscopeError, match="no gallery"):
        make_server(tmp_path)




@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package 'chromium'; .ci/run installs it)")
def test_a_browser_walks_the_gallery_and_every_image_loads(built):
    out, _, _ = built
    visited = []
    with browsing(out) as (page, url, failed):
        def arrive() -> None:
            page.wait_for_load_state("load")
            visited.append(page.url)
            assert broken_images(page) == [], f"images that did not load on {page.url}"
            assert page.evaluate("document.images.length") > 0 or page.url.endswith("/index.html") and "efficientnet" not in page.url

        page.goto(url + "index.html")
        arrive()
        page.click("a.card.model")
        arrive()
        page.click("table.layers a:text-is('blocks.4.2')")
        arrive()
        page.click("a.unit >> nth=0")
        arrive()
        assert page.locator("h1").inner_text() == "blocks.4.2:0"
        page.click("nav.crumbs a >> nth=1")
        arrive()
        page.click("a.card.photo")
        arrive()
        assert page.locator("h1").inner_text() == "chelsea"
    assert [u.split("/", 3)[-1] for u in visited] == [
        "index.html", "efficientnet_lite0/index.html", "efficientnet_lite0/blocks.4.2/index.html",
        "efficientnet_lite0/blocks.4.2/0.html", "efficientnet_lite0/index.html", "efficientnet_lite0/photos/chelsea.html"]
    assert failed == []


def test_a_wrapped_model_without_labels_gets_a_gallery_too(image_folder, tmp_path):
    """Plumbing only (random weights): a user's own small network, no class names, a 1x1 pooled layer."""
    import torch
    from torch import nn

    import neuronscope as ns

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    model = ns.wrap(net, input_size=64, name="tiny")
    config = small_config(image_folder, layers=None, units=1, samples=1, render=RenderConfig(steps=4, size=48, progress=False))
    summary = build_gallery(model, config, tmp_path)
    data = json.loads((tmp_path / "tiny" / "manifest.json").read_text())
    assert "5" not in data["layers"]  # the 1x1 pooled output is not a layer to show
    assert summary.rendered == len(data["layers"]) and (tmp_path / "tiny" / "photos" / "chelsea.html").is_file()
    assert data["photos"]["chelsea"]["factors"] is None  # no spatial layer to factor class attribution on
    assert broken_links(tmp_path) == []


def test_photo_pages_are_made_again_when_the_gallery_gains_a_layer(built, lite0):
    out, _, config = built
    from dataclasses import replace

    before = manifest(out)["photos"]["chelsea"]
    assert before["layers"] == list(LAYERS)
    grown = build_gallery(lite0, replace(config, layers=("blocks.1.1",), units=1), out)
    after = manifest(out)["photos"]["chelsea"]
    assert grown.photos == 1 and after["layers"] == ["blocks.1.1", *LAYERS]
    assert [c["layer"] for c in after["caricatures"]] == ["blocks.1.1", *LAYERS]
    assert broken_links(out) == []


def test_the_unit_page_shows_the_render_warning_of_a_dead_unit(image_folder, tmp_path):
    """Plumbing only (hand-set weights): channel 1 is 0 after the ReLU for every input, so its
    objective has no gradient; the warning reaches the manifest and the unit's page, and only that unit's."""
    import torch
    from torch import nn

    import neuronscope as ns

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 4, 3, padding=1))
    with torch.no_grad():
        net[0].weight[1].zero_()
        net[0].bias[1] = -1.0
    model = ns.wrap(net, input_size=32, name="dead", layers=["1"])
    config = small_config(image_folder, layers=("1",), units=None, samples=1, photos=(),
                          render=RenderConfig(steps=3, size=32, progress=False))
    with pytest.warns(ns.RenderWarning, match="gradient is zero at the start"):
        build_gallery(model, config, tmp_path)
    units = json.loads((tmp_path / "dead" / "manifest.json").read_text())["units"]
    assert units["1:0"]["warnings"] == []
    assert len(units["1:1"]["warnings"]) == 1 and units["1:1"]["warnings"][0].startswith("1:1: ")
    dead_page = (tmp_path / "dead" / "1" / "1.html").read_text()
    assert 'role="alert"' in dead_page and "gradient is zero at the start" in dead_page
    assert 'role="alert"' not in (tmp_path / "dead" / "1" / "0.html").read_text()


@pytest.mark.slow
def test_an_image_folder_with_labels_gives_each_unit_page_the_classes_of_its_top_examples(lite0, tmp_path):
    source = bundled_source()
    classes = ("chelsea", "coffee", "rocket", "horse")  # a class folder per photo, of that photo's crops
    for name in classes:
        for i, key in enumerate([k for k in source.keys() if k.startswith(name + "@")][:4]):
            save_png(tmp_path / "images" / name / f"{i}.png", source.load(key))
    out = tmp_path / "g"
    build_gallery(lite0, small_config(tmp_path / "images", layers=("blocks.4.2",), units=4, examples=6, photos=()), out)
    seen = set()
    for key, record in manifest(out)["units"].items():
        truth = Counter(e["key"].split("/")[0] for e in record["top"])  # the folder each example came from
        assert dict(record["top_classes"]) == truth, key
        page = (out / "efficientnet_lite0" / "blocks.4.2" / f"{key.split(':')[1]}.html").read_text()
        for label, count in truth.items():
            assert f"<strong>{label}</strong> × {count}" in page, key
        seen |= set(truth)
    assert len(seen) > 1 and seen <= set(classes)


def test_photo_pages_make_caricatures_in_depth_batches_that_keep_each_layers_seed(lite0):
    """Two batches (3 layers, then 1) give what one caricature call per batch gives: each layer
    keeps its place, seed and similarity; the photo's page lists them shallow to deep."""
    layers = ["blocks.1.1", "blocks.2.1", "blocks.3.2", "blocks.4.2"]
    photo = load_image(photo_path("chelsea"))
    both = _caricatures(lite0, photo, layers, steps=3)
    deep = caricature(lite0, photo, layers[3:], CaricatureConfig(steps=3, seed=3, progress=False))
    assert both.layers == layers and both.images.shape[0] == len(both.similarity) == 4
    torch.testing.assert_close(both.images[3], deep.images[0])
    torch.testing.assert_close(both.similarity[3], deep.similarity[0])


@pytest.mark.slow
def test_class_units_show_how_their_own_and_other_models_classify_their_pictures(lite0, image_folder, tmp_path):
    config = small_config(image_folder, layers=("blocks.2.1",), units=1, samples=1, classes=("tabby",), photos=(),
                          render=RenderConfig(steps=128, progress=False))
    build_gallery(lite0, config, tmp_path)
    assert broken_links(tmp_path) == [] and partial_files(tmp_path) == []
    data = manifest(tmp_path)
    record = data["units"]["logits:281"]
    assert record["label"] == "tabby" and len(record["top"]) == 4  # the images scoring the class highest
    judges = {j["model"]: j["pictures"] for j in record["judges"]}
    assert list(judges) == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert judges["efficientnet_lite0"][0]["rank"] == 1  # the model it was made on, viewed as a user would
    for pictures in judges.values():
        top = [label for label, _ in pictures[0]["top"]]
        assert len(top) == 5 and pictures[0]["rank"] == (top.index("tabby") + 1 if "tabby" in top else None)
    # the class layer has no grid: no weights to it, no class views, no caricature of it on photo pages
    assert "inputs_from" not in data["layers"]["logits"] and "classes" not in data["layers"]["logits"]
    assert spatial(lite0, ["blocks.2.1", "logits"]) == ["blocks.2.1"]
    page = (tmp_path / "efficientnet_lite0" / "logits" / "281.html").read_text()
    assert "How models classify these pictures" in page and "efficientnet_lite2" in page and "tabby" in page
    assert "tabby" in (tmp_path / "efficientnet_lite0" / "logits" / "index.html").read_text()
