"""Techniques that patch the user's module (gradient overrides, frozen weights, hooks) leave it
exactly as it was: no instance ``forward``, the same ``requires_grad`` flags, no hooks, the same
weights and no accumulated gradients, after a normal return and after an error mid-way."""
import pytest
import torch
from torch import nn

import neuronscope as ns
from neuronscope import objectives as obj


class Trip(nn.Module):
    """The identity until armed; then raises on the n-th forward from there (an error mid-way)."""

    def __init__(self):
        super().__init__()
        self.left = None

    def arm(self, calls: int) -> None:
        self.left = calls

    def forward(self, x):
        if self.left is not None:
            self.left -= 1
            if self.left <= 0:
                self.left = None
                raise RuntimeError("tripwire")
        return x


class Small(nn.Module):
    """ReLU, ReLU6 and MaxPool2d modules, the ones the overrides patch."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.relu6 = nn.ReLU6()
        self.pool = nn.MaxPool2d(2)
        self.trip = Trip()
        self.conv3 = nn.Conv2d(6, 5, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(5, 10)

    def forward(self, x):
        x = self.pool(self.relu6(self.conv2(self.relu(self.conv1(x)))))
        x = self.relu2(self.conv3(self.trip(x)))
        return self.fc(x.mean((2, 3)))


QUIET = {"steps": 3, "size": 16, "progress": False}

CALLS = {
    "render unfused": lambda m, x: ns.render(m, obj.channel("conv3", 1) + obj.class_logit(2),
                                             ns.RenderConfig(fast=False, **QUIET)),
    "attribute": lambda m, x: ns.attribute(m, [3, "conv3:1"], x, "conv2"),
    "attribute unsmoothed": lambda m, x: ns.attribute(m, [3], x, "conv2", smooth=False),
    "attribute_all_classes": lambda m, x: ns.attribute_all_classes(m, x, "conv2", chunk=4),
    "expanded_weights": lambda m, x: ns.expanded_weights(m, to="conv3", from_layer="conv2"),
    "contributions": lambda m, x: ns.contributions(m, "conv3:1", x, from_layer="conv2"),
}


def state(module: nn.Module) -> dict:
    """Everything a technique could leave behind on the user's module."""
    return {
        "instance forwards": sorted(name for name, m in module.named_modules() if "forward" in m.__dict__),
        "requires_grad": {name: p.requires_grad for name, p in module.named_parameters()},
        "grads": sorted(name for name, p in module.named_parameters() if p.grad is not None),
        "hooks": sorted(name for name, m in module.named_modules()
                        if m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks),
        "training": sorted(name for name, m in module.named_modules() if m.training),
    }


def weights(module: nn.Module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.fixture
def small():
    torch.manual_seed(0)
    network = Small()
    model = ns.wrap(network, input_size=16)
    model.all_layers()  # the layer table's probe pass, before any arming
    # the user's own choice of flags, mixed, which every technique must give back as it found them
    network.conv1.weight.requires_grad_(False)
    network.conv2.bias.requires_grad_(False)
    network.fc.weight.requires_grad_(False)
    return model


def assert_restored(module, before, saved):
    assert state(module) == before
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=key)


FUSED = {"render fused": lambda m, x: ns.render(m, obj.channel("conv3", 1), ns.RenderConfig(fast=True, **QUIET))}
"""The fused render patches a copy of the model, which must share nothing patched with the user's."""


@pytest.mark.parametrize("call", [*CALLS, *FUSED])
def test_the_module_is_restored_after_a_call(small, call):
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    before, saved = state(small.module), weights(small.module)
    assert before["requires_grad"]["conv1.weight"] is False and before["requires_grad"]["conv1.bias"] is True
    assert before["instance forwards"] == [] and before["hooks"] == []
    {**CALLS, **FUSED}[call](small, x)
    assert_restored(small.module, before, saved)


@pytest.mark.parametrize("call", list(CALLS))
def test_the_module_is_restored_after_an_error_mid_way(small, call):
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    before, saved = state(small.module), weights(small.module)
    seen = {}

    def spy(module, inputs, output):  # what the patched network looked like when the error came
        seen["patched"] = sorted(name for name, m in small.module.named_modules() if "forward" in m.__dict__)
        seen["frozen"] = not any(p.requires_grad for p in small.module.parameters())

    # at the forward pass run under the overrides: render's second step; contributions runs the
    # plain network once first (to find where the unit fires), then the linear one
    small.module.trip.arm(2 if call in ("render unfused", "contributions") else 1)
    handle = small.module.trip.register_forward_pre_hook(lambda m, inputs: spy(m, inputs, None))
    try:
        with pytest.raises((RuntimeError, ns.NeuronscopeError), match="tripwire"):
            CALLS[call](small, x)
    finally:
        handle.remove()
    assert seen, "the error did not come from inside the call"
    if call != "attribute unsmoothed":
        assert seen["patched"], "the error came before the overrides were in place"
    if call == "render unfused":
        assert seen["frozen"]
    assert_restored(small.module, before, saved)


def test_an_invalid_unit_inside_a_render_restores_the_module(small):
    before, saved = state(small.module), weights(small.module)
    with pytest.raises((IndexError, RuntimeError, ns.NeuronscopeError)):
        ns.render(small, obj.channel("conv3", 99), ns.RenderConfig(fast=False, **QUIET))
    assert_restored(small.module, before, saved)


def test_an_unfused_render_restores_lite0(lite0):
    module = lite0.module
    flags = {name: p.requires_grad for name, p in module.named_parameters()}
    chosen = [name for name, _ in module.named_parameters()][::7]
    try:
        for name, p in module.named_parameters():
            p.requires_grad_(name in chosen)
        before = state(module)
        assert sum(before["requires_grad"].values()) == len(chosen) > 0
        assert before["instance forwards"] == [] and before["hooks"] == []
        ns.render(lite0, obj.channel("blocks.2.1", 3), ns.RenderConfig(fast=False, steps=2, size=32, progress=False))
        assert state(module) == before
    finally:
        for name, p in module.named_parameters():
            p.requires_grad_(flags[name])
            p.grad = None
