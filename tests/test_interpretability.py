"""A verdict on every unit (issue 25): the two-choice interpretability score on Lite0's real units
over the bundled photos, judged by Lite2; its baseline of random directions; sanity checks."""
import copy
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import spearmanr

import neuronscope as ns
from neuronscope.errors import NeuronscopeError
from neuronscope.examples import ExamplesConfig, dataset_examples
from neuronscope.interpretability import (
    ScoreConfig,
    Similarity,
    converged,
    interpretability,
    path_similarity,
    two_choice,
    with_random_directions,
)
from neuronscope.interpretability.tasks import task_rng

QUIET = ScoreConfig(progress=False)
TWENTY = ScoreConfig(tasks=20, references=9, query_from=20, sharpness=10.0)


@pytest.fixture(scope="module")
def judge():
    return Similarity(ns.load("efficientnet_lite2"), QUIET.similarity_size)


def test_the_task_is_answered_right_when_strong_and_weak_images_differ_and_at_chance_when_not():
    rng = np.random.default_rng(0)
    unit = lambda rows, centre: _unit_rows(rng.normal(centre, 0.3, (rows, 16)))  # noqa: E731
    apart = two_choice(unit(40, 1.0), unit(40, -1.0), TWENTY, task_rng(0, "a"))
    assert apart.right == 1.0 and apart.score > 0.9 and apart.margin > 0.5
    alike = [two_choice(unit(40, 0.0), unit(40, 0.0), TWENTY, task_rng(s, "b")).right for s in range(40)]
    assert 0.4 < np.mean(alike) < 0.6


def test_a_query_is_never_compared_with_references_of_its_own_photo():
    rng = np.random.default_rng(1)
    # strong images of photo "a" are all near one point: only a shared photo tells them apart
    photo_a, elsewhere = _unit_rows(rng.normal(0, 1, (1, 256))), _unit_rows(rng.normal(0, 1, (40, 256)))
    strong = np.concatenate([_unit_rows(photo_a + rng.normal(0, 0.005, (20, 256))), elsewhere[:20]])
    order = np.r_[0:10, 20:30, 10:20, 30:40]  # ranks 0-19: ten of photo a, ten others; same for ranks 20-39
    strong, strong_groups = strong[order], [("a" if i < 20 else f"o{i}") for i in order]
    weak = _unit_rows(rng.normal(0, 1, (40, 256)))
    weak_groups = [f"w{i}" for i in range(40)]
    many = ScoreConfig(tasks=200)
    same_photo = two_choice(strong, weak, many, task_rng(0, "u"))
    apart = two_choice(strong, weak, many, task_rng(0, "u"), groups=(strong_groups, weak_groups))
    assert same_photo.margin > 0.1 and abs(apart.margin) < 0.05  # the photo's look no longer answers the task
    one_photo = two_choice(strong, weak, TWENTY, task_rng(0, "u"), groups=(["a"] * 40, weak_groups))
    assert one_photo is None


def _unit_rows(values: np.ndarray) -> np.ndarray:
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def test_random_directions_are_an_exact_rotation_of_the_layer(lite0):
    model = with_random_directions(lite0, "blocks.2.1", seed=3)
    x = lite0.input("chelsea")
    with ns.capture(model, ["blocks.2.1", "blocks.2.1.random"]) as cap:
        found = cap(x)
    rotation = model.derived["blocks.2.1.random"].rotation
    assert torch.allclose(rotation @ rotation.T, torch.eye(40), atol=1e-5)
    assert torch.allclose(found["blocks.2.1.random"], torch.einsum("fc,bchw->bfhw", rotation, found["blocks.2.1"]), atol=1e-4)
    with ns.capture(model, ["blocks.2.1.random", "blocks.2.1"], replace={"blocks.2.1.random": lambda v: v * 0}) as cap:
        assert cap(x)["blocks.2.1"].abs().max() < 1e-4  # every direction off: the layer is zero


def test_weakest_examples_are_the_images_whose_peak_is_lowest_whatever_the_batching(lite0):
    source = ns.data.bundled_source(["chelsea", "coffee", "hubble"])
    found = [dataset_examples(lite0, source, "blocks.1.1", ExamplesConfig(k=12, weakest=True, batch=b, progress=False))
             ["blocks.1.1"] for b in (7, 16)]
    assert np.array_equal(found[0].bottom_index, found[1].bottom_index)
    peaks = []
    with torch.no_grad(), ns.capture(lite0, "blocks.1.1") as cap:
        for key in source.keys():
            peaks.append(cap(lite0.input(source.load(key)))["blocks.1.1"][0].flatten(1).max(1).values)
    peaks = torch.stack(peaks)  # (items, channels)
    for channel in (0, 5, 17):
        lowest = np.sort(peaks[:, channel].numpy())[:12]
        assert np.allclose(np.sort(found[0].bottom_values[channel]), lowest, atol=1e-4)


class Colour(nn.Module):
    """Units that are perfectly interpretable by construction: the mean redness, greenness and
    brightness of 32-px patches."""

    def __init__(self) -> None:
        super().__init__()
        self.colour = nn.Identity()

    def forward(self, x):
        red = x[:, :1] - 0.5 * (x[:, 1:2] + x[:, 2:3])
        green = x[:, 1:2] - 0.5 * (x[:, :1] + x[:, 2:3])
        maps = F.avg_pool2d(torch.cat([red, green, x.mean(1, keepdim=True)], 1), 32, 16)
        return self.colour(maps).flatten(1)[:, :10]


@pytest.mark.slow
def test_a_unit_built_to_be_interpretable_scores_at_least_0_9():
    model = ns.wrap(Colour(), input_size=224, name="colour patches")
    scores = interpretability(model, ns.data.bundled_source(), ["colour:0", "colour:2"], QUIET)
    assert scores.similarity == "efficientnet_lite0"  # a user's model is judged by Lite0
    assert scores["colour:0"].score >= 0.9 and scores["colour:0"].right == 1.0  # redness
    assert scores["colour:2"].score >= 0.9  # brightness


@pytest.mark.slow
def test_a_dead_channel_is_flagged_not_scored(lite0, judge):
    network = copy.deepcopy(lite0.module)
    bn = network.get_submodule("blocks.2.0.bn3")  # no residual around blocks.2.0: its channel 7 is now always 0
    with torch.no_grad():
        bn.weight[7] = 0.0
        bn.bias[7] = 0.0
    dead = ns.Model(network, lite0.info)
    scores = interpretability(dead, ns.data.bundled_source(), ["blocks.2.0:7", "blocks.2.0:8"], QUIET, judge=judge)
    assert scores["blocks.2.0:7"].constant and scores["blocks.2.0:7"].score is None
    assert scores["blocks.2.0:7"].verdict.startswith("constant")
    assert not scores["blocks.2.0:8"].constant and 0.5 < scores["blocks.2.0:8"].score <= 1.0
    assert scores.summary()["blocks.2.0"] == {"units": 2, "scored": 1, "constant": 1, "mean_score": scores["blocks.2.0:8"].score,
                                              "mean_visual_score": None}


@pytest.mark.slow
def test_two_task_seeds_agree_on_a_layer_of_40_units(lite0, judge, tmp_path):
    runs = [interpretability(lite0, ns.data.bundled_source(), "blocks.2.1", ScoreConfig(seed=seed, progress=False),
                             judge=judge, cache_dir=tmp_path) for seed in (0, 1)]
    first, second = ([u.score for u in run.units] for run in runs)
    assert len(first) == 40 and all(0 <= s <= 1 for s in first)
    assert spearmanr(first, second)[0] >= 0.8
    assert runs[1].timing["examples_s"] < runs[0].timing["examples_s"]  # the second run reads the cached pass
    saved = json.loads(runs[0].save(tmp_path / "scores.json").read_text())
    assert saved["similarity"] == "efficientnet_lite2" and len(saved["scores"]) == 40
    assert saved["summary"]["blocks.2.1"]["scored"] == 40
    apart = interpretability(lite0, ns.data.bundled_source(), "blocks.2.1",
                             ScoreConfig(other_groups=True, progress=False), judge=judge, cache_dir=tmp_path)
    # crops of one photo overlap: matched only across photos, the tasks get harder for every unit
    assert apart.mean("blocks.2.1") < runs[0].mean("blocks.2.1") - 0.03


@pytest.mark.slow
def test_a_visualization_based_score_comes_with_a_unit_s_renders(lite0, judge):
    rendered = ns.render_units(lite0, ["blocks.4.2:3"], ns.RenderConfig(steps=64, size=128, progress=False), samples=2)
    scores = interpretability(lite0, ns.data.bundled_source(), ["blocks.4.2:3", "blocks.4.2:4"], QUIET,
                              visualizations={"blocks.4.2:3": rendered.images}, judge=judge)
    assert 0 <= scores["blocks.4.2:3"].visual_score <= 1 and scores["blocks.4.2:3"].visual_right is not None
    assert scores["blocks.4.2:4"].visual_score is None


def test_a_model_never_judges_itself_and_bad_settings_get_clear_errors(lite0):
    with pytest.raises(NeuronscopeError, match="cannot judge its own units"):
        interpretability(lite0, ns.data.bundled_source(), "blocks.2.1", ScoreConfig(similarity="efficientnet_lite0"))
    with pytest.raises(NeuronscopeError, match="references <= query_from < pool"):
        ScoreConfig(pool=10, query_from=20)
    with pytest.raises(NeuronscopeError, match="did you mean"):
        interpretability(lite0, ns.data.bundled_source(), "blocks.2.11", QUIET)
    with pytest.raises(NeuronscopeError, match="drop '@x,y'"):
        interpretability(lite0, ns.data.bundled_source(), "blocks.2.1:3@1,1", QUIET)
    with pytest.raises(NeuronscopeError, match="at least 80 images"):
        interpretability(lite0, ns.data.bundled_source(["chelsea"]), "blocks.2.1:3", QUIET)


def test_convergence_tells_a_plateau_from_a_rise():
    steps = torch.arange(128, dtype=torch.float32)[:, None]
    rising, flat = steps * 0.5 + 1.0, 10.0 - 10.0 * torch.exp(-steps / 8)
    noisy = flat + 0.2 * torch.randn(128, 1, generator=torch.Generator().manual_seed(0))
    assert converged(torch.cat([rising, flat, noisy], 1)) == [False, True, True]


@pytest.mark.slow
def test_a_class_visualization_travels_the_path_of_its_class_at_the_last_layers(lite0):
    espresso = lite0.class_index("espresso")  # the class of 19 of the 330 bundled crops (coffee's)
    rendered = ns.render_units(lite0, ["logits:espresso"], ns.RenderConfig(steps=128, size=160, progress=False))
    found = path_similarity(lite0, ns.data.bundled_source(), {espresso: rendered.images}, ["blocks.2.1", "blocks.6.0", "bn2"])
    assert found[0].images >= 10 and found[0].class_name == "espresso"
    assert found[0].closer_to_class["bn2"]
    with pytest.raises(NeuronscopeError, match="no image"):
        path_similarity(lite0, ns.data.bundled_source(["chelsea"]), {espresso: rendered.images}, ["bn2"])


@pytest.mark.slow
def test_the_score_command_writes_scores_and_a_sheet_of_the_best_and_worst_units(tmp_path, capsys):
    from neuronscope.cli import main

    out = tmp_path / "scores"
    assert main(["score", "efficientnet_lite0", "blocks.1.1", "--units", "0", "1", "2", "--tasks", "10", "--no-progress",
                 "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["blocks.1.1"]["scored"] == 3 and summary["blocks.1.1.random"]["units"] == 24
    saved = json.loads((out / "scores.json").read_text())
    assert [u["unit"] for u in saved["scores"][:3]] == ["blocks.1.1:0", "blocks.1.1:1", "blocks.1.1:2"]
    assert (out / "best-and-worst.png").stat().st_size > 10_000 and (out / "best-and-worst.json").exists()
    assert main(["score", "efficientnet_lite0", "blocks.1.11", "-o", str(tmp_path / "x")]) == 2
    assert "did you mean" in capsys.readouterr().err
