"""Gradient overrides: exact gradients, and the model is left exactly as it was."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuronscope.overrides import linearized, redirected_relu, smooth_maxpool


def grad_through(module, x, g):
    x = x.clone().requires_grad_(True)
    module(x).backward(g)
    return x.grad


@pytest.mark.parametrize(
    "g, x, expected",
    [(1, -1, 0), (-1, -1, -1), (1, 1, 1), (-1, 1, -1)],
)
def test_redirected_relu_truth_table(g, x, expected):
    relu = nn.ReLU()
    with redirected_relu(relu):
        grad = grad_through(relu, torch.tensor([[float(x)]]), torch.tensor([[float(g)]]))
    assert grad.item() == expected


@pytest.mark.parametrize("g, x, expected", [(1, 7, 1), (-1, 7, 0), (-1, -1, -1), (1, -1, 0)])
def test_redirected_relu6_is_also_redirected_above_six(g, x, expected):
    relu6 = nn.ReLU6()
    with redirected_relu(relu6):
        grad = grad_through(relu6, torch.tensor([[float(x)]]), torch.tensor([[float(g)]]))
    assert grad.item() == expected


def test_an_item_with_some_standard_gradient_keeps_it_and_the_override_switches_off():
    relu = nn.ReLU()
    x = torch.tensor([[1.0, -1.0], [-1.0, -2.0]])
    g = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])
    active = [True]
    with redirected_relu(relu, lambda: active[0]):
        grad = grad_through(relu, x, g)
        assert grad.tolist() == [[1.0, 0.0], [-1.0, -1.0]]  # item 0: standard; item 1: redirected
        active[0] = False
        assert grad_through(relu, x, g).tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_smooth_maxpool_keeps_the_forward_and_splits_equal_windows():
    pool = nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)
    x = torch.rand(2, 3, 7, 7)
    with smooth_maxpool(pool):
        torch.testing.assert_close(pool(x), F.max_pool2d(x, 2, 2, 1, ceil_mode=True), atol=1e-6, rtol=0)
    plain = nn.MaxPool2d(2)
    with smooth_maxpool(plain):
        grad = grad_through(plain, torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1))
    torch.testing.assert_close(grad, torch.full((1, 1, 2, 2), 0.25), atol=1e-3, rtol=0)
    x = torch.rand(1, 2, 4, 4)
    with smooth_maxpool(plain):
        smooth = grad_through(plain, x, torch.ones(1, 2, 2, 2))
    xr = x.clone().requires_grad_(True)
    surrogate = F.avg_pool2d(xr * xr, 2) / (1e-2 + F.avg_pool2d(xr.abs(), 2))
    surrogate.backward(torch.ones(1, 2, 2, 2))
    torch.testing.assert_close(smooth, xr.grad)


def test_linearized_gradients_do_not_depend_on_the_input():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 4, 3), nn.ReLU6())
    g = torch.randn(1, 4, 3, 3)
    with linearized(net):
        a = grad_through(net, torch.randn(1, 3, 12, 12), g)
        b = grad_through(net, torch.randn(1, 3, 12, 12) * 5, g)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_overrides_leave_the_model_exactly_as_before(lite0):
    net = lite0.module
    state = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
    with pytest.raises(RuntimeError, match="inside"):
        with redirected_relu(net), smooth_maxpool(net), linearized(net):
            assert any("forward" in m.__dict__ for m in net.modules())
            raise RuntimeError("inside")
    assert not any("forward" in m.__dict__ for m in net.modules())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(net(x), before, rtol=0, atol=0)


def test_plumbing_the_redirected_relu_reaches_functional_relus_in_a_users_forward():
    """Random weights: a conv whose outputs are all negative, then ``F.relu`` (not a module): the
    unit after it has no gradient at a random start; the redirected gradient reaches it anyway."""
    import neuronscope as ns

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            with torch.no_grad():
                self.conv1.weight.abs_()
                self.conv1.bias.fill_(-50.0)  # dead for every input in [0, 1]
                self.conv2.weight.abs_()

        def forward(self, x):
            return self.conv2(F.relu(self.conv1(x))).mean((2, 3))

    torch.manual_seed(0)
    model = ns.wrap(Functional(), input_size=32)
    assert model.functional_relus == (1, 0)
    plain = ns.render_units(model, ["conv2:0"], ns.RenderConfig(steps=4, size=32, redirect_steps=0, progress=False))
    fixed = ns.render_units(model, ["conv2:0"], ns.RenderConfig(steps=4, size=32, progress=False))
    assert "gradient is zero at the start" in " ".join(plain.notes[0])
    assert not fixed.notes.get(0)
