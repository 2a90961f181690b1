"""The one loop's extension points: callbacks, a stop criterion, the optimizer, a start image, Ctrl-C."""
import functools
import math

import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope.featurevis import LoopConfig, Plateau, RenderConfig, optimize, render
from neuronscope.featurevis import objectives as obj
from neuronscope.featurevis.caricature import CaricatureConfig
from neuronscope.featurevis.param import PixelImage, make_param


@pytest.fixture(scope="module")
def tiny():  # random weights: plumbing only
    torch.manual_seed(0)
    return ns.wrap(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)), input_size=32)


def quiet(**kw):
    return LoopConfig(**{"steps": 20, "transforms": "none", "fast": False, **kw})


def test_callbacks_see_every_step_and_one_returning_true_stops(tiny):
    seen = []
    run = optimize(tiny, obj.channel("2", 1), make_param("fourier", (32, 32), [0, 1]), quiet(),
                   callbacks=[lambda s: seen.append((s.step, tuple(s.values.shape))), lambda s: s.step == 4])
    assert seen == [(i, (2,)) for i in range(5)] and run.stopped_at == 4 and len(run.history) == 5


def test_plateau_stops_once_nothing_moves(tiny):
    stop = Plateau(patience=3, tolerance=1e-3)
    run = optimize(tiny, obj.channel("2", 1), make_param("pixel", (32, 32), [0]), quiet(steps=50, lr=1e-9),
                   callbacks=[stop])
    assert run.stopped_at == 3  # a learning rate of 1e-9 changes nothing: stopped after patience steps


def test_the_optimizer_factory_is_used(tiny):
    made = []

    def sgd(parameters, lr):
        made.append(lr)
        return torch.optim.SGD(parameters, lr=lr)

    run = optimize(tiny, obj.channel("2", 1), make_param("pixel", (32, 32), [0]), quiet(lr=0.5, optimizer=sgd))
    assert made == [0.5] and run.history[-1, 0] > run.history[0, 0]


def test_ctrl_c_returns_the_partial_result(tiny):
    def interrupt(step):
        if step.step == 2:
            raise KeyboardInterrupt

    run = optimize(tiny, obj.channel("2", 1), make_param("pixel", (32, 32), [0]), quiet(), callbacks=[interrupt])
    assert run.interrupted and len(run.history) == 3 and run.images.shape == (1, 3, 32, 32)


def test_an_objective_with_the_wrong_number_of_values_is_a_clear_error(tiny):
    wrong = obj.Objective(lambda acts: acts["2"].mean((1, 2, 3))[:1], ("2",), "first only")
    with pytest.raises(ns.NeuronscopeError, match=r"expected one per optimized image \(2,\)"):
        optimize(tiny, wrong, make_param("pixel", (32, 32), [0, 1]), quiet(steps=1))


def test_init_starts_the_render_from_a_photo(tiny):
    config = ns.RenderConfig(steps=1, size=48, lr=1e-6, transforms="none", progress=False)
    started = ns.render(tiny, obj.channel("2", 0), config, init="chelsea")
    plain = ns.render(tiny, obj.channel("2", 0), config)
    photo = tiny.input("chelsea", (48, 48), crop_fraction=1.0)[0]
    assert (started.images[0] - photo).abs().mean() < 0.05 < (plain.images[0] - photo).abs().mean()
    assert started.manifest["init"] == "chelsea"


def test_an_unset_learning_rate_is_the_parameterizations_own(tiny):
    made = []

    def sgd(parameters, lr):
        made.append(lr)
        return torch.optim.SGD(parameters, lr=lr)

    for kind in ("pixel", "maco"):
        optimize(tiny, obj.channel("2", 1), make_param(kind, (32, 32), [0]), quiet(steps=1, optimizer=sgd))
    assert made == [0.05, 1.0]


def test_a_cosine_schedule_sets_the_optimizer_rate_every_step_and_changes_the_fingerprint(tiny):
    rates = []

    def sgd(parameters, lr, own=None):  # own: a factory that sets its own rate
        optimizer = torch.optim.SGD(parameters, lr=own or lr)
        step = optimizer.step

        def recorded(*args, **kwargs):
            rates.append(optimizer.param_groups[0]["lr"])
            return step(*args, **kwargs)

        optimizer.step = recorded
        return optimizer

    optimize(tiny, obj.channel("2", 1), make_param("pixel", (32, 32), [0]), quiet(steps=5, lr=0.2, optimizer=sgd,
                                                                                 schedule="cosine"))
    assert rates == pytest.approx([0.2 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * k / 4))) for k in range(5)])
    assert rates[0] == pytest.approx(0.2) and rates[-1] == pytest.approx(0.01)
    for schedule, last in (("constant", 0.3), ("cosine", 0.015)):  # the schedule scales the factory's own rate
        rates.clear()
        optimize(tiny, obj.channel("2", 1), make_param("pixel", (32, 32), [0]),
                 quiet(steps=5, lr=0.2, optimizer=functools.partial(sgd, own=0.3), schedule=schedule))
        assert rates[0] == pytest.approx(0.3) and rates[-1] == pytest.approx(last)
    constant, cosine = RenderConfig(), RenderConfig(schedule="cosine")
    assert "schedule" not in constant.pixel_settings()  # pictures made before the option keep their fingerprint
    assert constant.fingerprint(tiny) != cosine.fingerprint(tiny)
    with pytest.raises(ns.NeuronscopeError, match="unknown schedule 'linear': choose one of constant, cosine"):
        LoopConfig(schedule="linear")


def test_render_and_caricature_configs_are_loop_configs_checked_in_one_place():
    for kind in (LoopConfig, RenderConfig, CaricatureConfig):
        assert issubclass(kind, LoopConfig)
        with pytest.raises(ns.NeuronscopeError, match="steps must be a positive integer"):
            kind(steps=0)
        with pytest.raises(ns.NeuronscopeError, match="unknown optimizer 'sgd'"):
            kind(optimizer="sgd")
    with pytest.raises(ns.NeuronscopeError, match="caricatures need shared transforms"):
        CaricatureConfig(shared_transforms=False)


def test_a_param_factory_in_the_config_renders_as_its_name_and_is_fingerprinted_by_name(tiny):
    named, made = (RenderConfig(steps=3, size=32, param=p, transforms="none", progress=False)
                   for p in ("pixel", PixelImage))
    images = [render(tiny, obj.channel("2", 1), config, batch=2).images for config in (named, made)]
    assert torch.equal(images[0], images[1])
    assert made.pixel_settings()["param"] == "neuronscope.featurevis.param.pixel.PixelImage"
    assert named.fingerprint(tiny) != made.fingerprint(tiny)
