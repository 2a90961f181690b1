"""The ray engine on a local Ray cluster of 2 CPUs started by the test: the same gallery as the
single-machine build, and a worker SIGKILLed mid-render is retried without losing or doubling a unit."""
from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gallery_checks import broken_links, cli, make_image_folder, manifest, partial_files
from PIL import Image

from neuronscope import NeuronscopeError
from neuronscope.featurevis.render import RenderConfig
from neuronscope.gallery import GalleryConfig, build_gallery
from neuronscope.scale import RayConfig, RayEngine
from neuronscope.scale.ray_engine import INSTALL_HINT

LAYERS = "blocks.2.1,blocks.4.2"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="the ray engine's tests need the ray extra: bash scripts/setup.sh test,ray")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for this module; yields its address."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images"))


def _build(out: Path, source: Path, *engine: str) -> None:
    """A small build from the CLI, on one torch thread: as each Ray worker of 1 CPU runs. (Float
    rounding differs with the thread count, and Adam carries it along: 2 threads against 1 moved
    an objective by 1.5 % after 8 steps; the same count gives the same numbers.)"""
    args = cli("microscope", "--layers", LAYERS, "--units", "2", "--samples", "2", "--steps", "8", "--examples", "4",
               "--photos", "", "--source", str(source), "--out", str(out), "--no-progress", *engine)
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]


@needs_ray
@pytest.mark.slow
def test_a_build_on_ray_equals_the_single_machine_build_unit_by_unit(cluster, image_folder, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "ray"
    _build(local, image_folder)
    _build(remote, image_folder, "--engine", "ray", "--address", cluster, "--workers", "2")
    a, b = manifest(local)["units"], manifest(remote)["units"]
    assert sorted(a) == sorted(b) == sorted(f"{layer}:{c}" for layer in LAYERS.split(",") for c in (0, 1))
    for key in a:
        assert [e["key"] for e in a[key]["top"]] == [e["key"] for e in b[key]["top"]], key
        assert [e["value"] for e in a[key]["top"]] == pytest.approx([e["value"] for e in b[key]["top"]], rel=1e-4, abs=1e-4)
        assert a[key]["seeds"] == b[key]["seeds"]
        assert a[key]["objective"] == pytest.approx(b[key]["objective"], rel=1e-5), key
        layer, channel = key.split(":")
        for name in a[key]["fv"]:
            pa, pb = (np.asarray(Image.open(out / "efficientnet_lite0" / layer / channel / name), dtype=np.int16)
                      for out in (local, remote))
            difference = np.abs(pa - pb)
            assert difference.max() <= 1, f"{key} {name}: {difference.mean()}, {difference.max()}"
    assert manifest(remote)["runs"][-1]["finished"]
    assert broken_links(remote) == [] and partial_files(remote) == []


@needs_ray
@pytest.mark.slow
def test_the_one_pass_on_ray_equals_the_local_pass_for_every_accumulator(cluster, lite0):
    """Examples of Lite0, Lite0 matched with Lite1 (another input size) and atlas samples with
    class attributions, in one pass distributed by Ray: the same results as in this process."""
    import neuronscope as ns
    from neuronscope.atlas import AtlasConfig, AtlasSamples
    from neuronscope.comparison.match import finish_matching, unit_matching
    from neuronscope.data.sources import bundled_source, first
    from neuronscope.examples import ExamplesConfig, ExamplesPass
    from neuronscope.stream import PassConfig, stream

    lite1 = ns.load("efficientnet_lite1")
    source = first(bundled_source(), 20)

    def consumers():
        return (ExamplesPass(lite0, source, ["blocks.2.1", "blocks.4.2"], ExamplesConfig(k=4, progress=False)),
                unit_matching(lite0, lite1, ["blocks.4.2"], ["blocks.4.3"]),
                AtlasSamples(lite0, "blocks.4.2", AtlasConfig(positions=2, progress=False)))

    config = PassConfig(batch=6, workers=0, progress=False)
    found = {}
    with RayEngine(RayConfig(address=cluster, workers=2)) as engine:
        for name, runner in (("local", None), ("ray", engine.pass_runner())):
            examples, matching, samples = consumers()
            result = stream(source, [examples.accumulator, matching, samples], config, runner=runner)
            examples.finish(result)
            found[name] = (examples.results, finish_matching(matching, source, result), samples.finish(), result)
    (ex_a, m_a, s_a, r_a), (ex_b, m_b, s_b, r_b) = found["local"], found["ray"]
    assert r_a.images == r_b.images == 20
    for layer in ex_a:
        assert ex_a[layer].keys == ex_b[layer].keys and np.array_equal(ex_a[layer].top_pos, ex_b[layer].top_pos)
        np.testing.assert_allclose(ex_a[layer].top_values, ex_b[layer].top_values, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m_a.cka, m_b.cka, atol=1e-5)
    assert s_a.keys == s_b.keys and np.array_equal(s_a.positions.numpy(), s_b.positions.numpy())
    np.testing.assert_allclose(s_a.attributions.numpy(), s_b.attributions.numpy(), rtol=1e-3,
                               atol=1e-3 * float(s_a.attributions.abs().max()))


@needs_ray
@pytest.mark.slow
def test_a_dictionary_learned_through_the_ray_pass_equals_the_local_one(cluster, lite0):
    from neuronscope.data.sources import bundled_source, first
    from neuronscope.dictionaries import DictionaryConfig, collect_vectors, learn_dictionary

    source = first(bundled_source(), 20)
    config = DictionaryConfig(positions=8, holdout=0.0, epochs=3, batch=64, report=False, progress=False)
    with RayEngine(RayConfig(address=cluster, workers=2)) as engine:
        vectors = collect_vectors(lite0, source, "blocks.4.2", config, runner=engine.pass_runner())
        remote = learn_dictionary(lite0, source, "blocks.4.2", config, runner=engine.pass_runner())
    local = learn_dictionary(lite0, source, "blocks.4.2", config)
    assert len(vectors) == 160 and list(vectors.keys) == [k for k in source.keys() for _ in range(8)]
    # float32 to 1e-5 of the layer's largest value: Ray's single-threaded workers sum in another
    # order than the local pass (an AMD EPYC differed by 1.8e-5 where values reach tens)
    local_vectors = collect_vectors(lite0, source, "blocks.4.2", config).vectors
    torch.testing.assert_close(vectors.vectors, local_vectors, rtol=1e-5, atol=1e-5 * float(local_vectors.abs().max()))
    assert remote.fingerprint == local.fingerprint
    torch.testing.assert_close(remote.decoder, local.decoder, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(remote.encoder, local.encoder, rtol=1e-4, atol=1e-4)


def _render_workers() -> list[int]:
    """Processes now running a render task (Ray titles a worker by the task it runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::render_task"):
                found.append(int(entry.name))
    return found


@needs_ray
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray's worker processes in /proc (Linux)")
@pytest.mark.slow
def test_a_worker_killed_while_rendering_is_retried_and_every_unit_is_recorded_once(cluster, lite0, image_folder, tmp_path):
    killed: list[int] = []
    stop = threading.Event()

    def kill_the_first_render_worker() -> None:
        while not stop.is_set() and not killed:
            for pid in _render_workers():
                time.sleep(0.5)  # let it get into its optimization
                if pid in _render_workers():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.05)

    config = GalleryConfig(layers=tuple(LAYERS.split(",")), units=3, samples=2, examples=4, photos=(),
                           render=RenderConfig(steps=48, size=64, progress=False), source=str(image_folder),
                           progress=False)
    killer = threading.Thread(target=kill_the_first_render_worker, daemon=True)
    killer.start()
    try:
        with RayEngine(RayConfig(address=cluster, workers=2)) as engine:
            summary = build_gallery(lite0, config, tmp_path, engine)
    finally:
        stop.set()
        killer.join()
    assert killed, "no render worker was seen running, so none was killed"
    data = manifest(tmp_path)
    expected = sorted(f"{layer}:{c}" for layer in config.layers for c in range(3))
    assert sorted(data["units"]) == expected
    assert summary.rendered == len(expected)  # the killed chunk was rendered again, and recorded once
    assert len(data["runs"]) == 1 and data["runs"][0]["finished"] and data["runs"][0]["rendered"] == len(expected)
    assert {record["run"] for record in data["units"].values()} == {data["runs"][0]["id"]}
    for key, record in data["units"].items():
        layer, channel = key.split(":")
        assert all((tmp_path / "efficientnet_lite0" / layer / channel / name).is_file() for name in record["fv"])
    assert partial_files(tmp_path) == [] and broken_links(tmp_path) == []


@needs_ray
@pytest.mark.slow
def test_an_unreachable_cluster_gets_a_clear_error(image_folder, tmp_path):
    for address, message in [("127.0.0.1:1", "cannot reach the Ray cluster at '127.0.0.1:1'"),
                             ("nowhere", "HOST:PORT")]:
        done = subprocess.run(cli("microscope", "--layers", "blocks.2.1", "--units", "1", "--source", str(image_folder),
                                  "--engine", "ray", "--address", address, "--out", str(tmp_path / "g")),
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "g").exists()


def test_the_ray_engine_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(NeuronscopeError, match=re.escape(INSTALL_HINT)):
        RayEngine(RayConfig())
