"""capture: the one way to run a model."""
import pytest
import torch
from torch import nn

import neuronscope as ns


def all_hooks(module: nn.Module) -> list:
    return [
        (name, len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
        for name, m in module.named_modules()
    ]


@pytest.fixture(scope="module")
def chelsea(lite0):
    return lite0.prepare(ns.data.photo("chelsea"))


def test_outputs_equal_a_manual_forward(lite0, chelsea):
    net = lite0.module
    with torch.no_grad():
        x = net.act1(net.bn1(net.conv_stem(lite0.normalize(chelsea))))
        manual_block1 = net.blocks[1](net.blocks[0](x))
        manual_block2 = net.blocks[2](manual_block1)
        manual_logits = net(lite0.normalize(chelsea))
        with ns.capture(lite0, ["blocks.2", "blocks.1.1", "logits"]) as cap:
            acts = cap(chelsea)
    assert list(acts) == ["blocks.2", "blocks.1.1", "logits"]
    torch.testing.assert_close(acts["blocks.1.1"], manual_block1, rtol=0, atol=0)
    torch.testing.assert_close(acts["blocks.2"], manual_block2, rtol=0, atol=0)
    torch.testing.assert_close(acts["logits"], manual_logits, rtol=0, atol=0)


def test_hooks_are_removed_after_normal_exit_and_after_an_exception(lite0, chelsea):
    before = all_hooks(lite0.module)
    with torch.no_grad(), ns.capture(lite0, ["blocks.2", "bn2"]) as cap:
        cap(chelsea)
        assert all_hooks(lite0.module) != before  # hooked while inside
    assert all_hooks(lite0.module) == before
    with pytest.raises(RuntimeError, match="boom"):
        with ns.capture(lite0, ["blocks.2", "bn2"]):
            raise RuntimeError("boom")
    assert all_hooks(lite0.module) == before


def test_the_users_own_hooks_are_kept(lite0, chelsea):
    seen = []
    handle = lite0.module.blocks[2].register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        with torch.no_grad(), ns.capture(lite0, ["blocks.2"]) as cap:
            cap(chelsea)
        assert len(lite0.module.blocks[2]._forward_hooks) == 1 and len(seen) == 1
    finally:
        handle.remove()


class CallCounter:
    """Counts real executions of a module by wrapping its forward (not a hook)."""

    def __init__(self, module: nn.Module):
        self.module, self.calls, self.forward = module, 0, module.forward

    def __enter__(self):
        def counted(*args, **kwargs):
            self.calls += 1
            return self.forward(*args, **kwargs)

        self.module.forward = counted
        return self

    def __exit__(self, *exc):
        del self.module.forward


def test_truncated_forward_never_runs_modules_after_the_deepest_layer(lite0, chelsea):
    net = lite0.module
    with CallCounter(net.conv_head) as head, CallCounter(net.blocks[3]) as stage3, CallCounter(net.blocks[2]) as stage2:
        with torch.no_grad(), ns.capture(lite0, ["blocks.1", "blocks.2"]) as cap:
            acts = cap(chelsea)
            assert cap.output is None
    assert (stage2.calls, stage3.calls, head.calls) == (1, 0, 0)
    assert acts["blocks.2"].shape == (1, 40, 28, 28)
    with CallCounter(net.conv_head) as head:
        with torch.no_grad(), ns.capture(lite0, ["blocks.2"], stop_early=False) as cap:
            cap(chelsea)
    assert head.calls == 1 and cap.output.shape == (1, 1000)


def test_gradients_of_hidden_layers_match_autograd(lite0, chelsea):
    image = chelsea.clone().requires_grad_(True)
    with ns.capture(lite0, ["blocks.3", "logits"], grads=True) as cap:
        acts = cap(image)
        acts["logits"][0, 281].backward()
    hidden = acts["blocks.3"]
    (expected,) = torch.autograd.grad(lite0.module(lite0.normalize(image))[0, 281], image)
    assert cap.gradients["blocks.3"].shape == hidden.shape
    torch.testing.assert_close(image.grad, expected)
    # the hidden layer's gradient, computed without capture: a plain hook keeps blocks.3's output
    seen = []
    handle = lite0.module.blocks[3].register_forward_hook(lambda module, inputs, output: seen.append(output))
    try:
        logit = lite0.module(lite0.normalize(chelsea.clone().requires_grad_(True)))[0, 281]
    finally:
        handle.remove()
    (expected_hidden,) = torch.autograd.grad(logit, seen[0])
    assert expected_hidden.abs().sum() > 0
    torch.testing.assert_close(cap.gradients["blocks.3"], expected_hidden)


def test_gradients_reach_a_hidden_layer_without_input_gradients(lite0, chelsea):
    # frozen weights and an input without requires_grad: the layer output itself becomes the leaf
    with ns.capture(lite0, ["bn2", "logits"], grads=True) as cap:
        acts = cap(chelsea)
        acts["logits"][0, 285].backward()
    grad = cap.gradients["bn2"]
    # after bn2 the head is a ReLU6, the mean over positions and one linear layer, so d logit / d bn2
    # is the class's weight for the channel over the 7 x 7 positions where the ReLU6 passes, else 0
    bn2 = acts["bn2"].detach()
    passes = ((bn2 > 0) & (bn2 < 6)).float()
    expected = lite0.module.classifier.weight[285].view(1, -1, 1, 1) * passes / (7 * 7)
    assert grad.shape == (1, 1280, 7, 7) and 0.05 < passes.mean() < 0.95
    torch.testing.assert_close(grad, expected)


def test_capture_errors_are_clear(lite0, chelsea):
    with pytest.raises(ns.NeuronscopeError, match="did you mean 'blocks.2.0'"):
        with ns.capture(lite0, ["blocks.2.O"]):
            pass
    with pytest.raises(ns.NeuronscopeError, match="no_grad"):
        with torch.no_grad(), ns.capture(lite0, ["blocks.2"], grads=True) as cap:
            cap(chelsea)
    with pytest.raises(ns.NeuronscopeError, match=r"expects images of shape \(B, 3, H, W\)"):
        with torch.no_grad(), ns.capture(lite0, ["blocks.2"]) as cap:
            cap(torch.rand(1, 4, 32, 32))


class Reuse(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.inplace = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = self.relu(self.conv(x))
        x = self.inplace(self.conv2(x))  # overwrites conv2's output
        return self.relu(x).mean((2, 3))  # self.relu runs a second time


def test_reused_and_in_place_modules_give_clear_errors():
    model = ns.wrap(Reuse(), input_size=16)
    assert "relu" not in [layer.name for layer in model.all_layers()]  # runs twice: not a capturable layer
    with pytest.raises(ns.NeuronscopeError, match="does not run exactly once"):
        model.layer("relu")
    with pytest.raises(ns.NeuronscopeError, match="changed in place"):
        with torch.no_grad(), ns.capture(model, ["conv2"], stop_early=False) as cap:
            cap(torch.rand(1, 3, 16, 16))


class Forgiving(nn.Module):
    """A user's model whose forward swallows every Exception from one submodule call."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.second = nn.Conv2d(4, 4, 3, padding=1)
        self.later = nn.Conv2d(4, 2, 1)
        self.calls = {"fallback": 0, "later": 0}

    def forward(self, x):
        try:
            x = self.second(self.first(x))
        except Exception:  # noqa: BLE001 - the point of the test
            self.calls["fallback"] += 1
            x = torch.zeros(x.shape[0], 4, *x.shape[-2:])
        self.calls["later"] += 1
        return self.later(x).mean((2, 3))


def test_stopping_early_cannot_be_swallowed_by_except_exception():
    torch.manual_seed(0)
    network = Forgiving()
    model = ns.wrap(network, input_size=8)
    model.all_layers()  # the layer table's probe forward pass runs now, not inside the capture
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        expected = network.second(network.first(model.normalize(x)))
        network.calls.update(fallback=0, later=0)
        with ns.capture(model, ["second"], stop_early=True) as cap:
            acts = cap(x)
    assert network.calls == {"fallback": 0, "later": 0}  # stopped right after 'second': nothing else ran
    assert cap.output is None
    torch.testing.assert_close(acts["second"], expected, rtol=0, atol=0)
