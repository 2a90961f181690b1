"""Gradient overrides: change how gradients flow through ReLU, ReLU6 and max-pool modules.

Each is a context manager that patches the ``forward`` of the matching modules of a network and
restores them exactly on exit (even on error). Forward values never change; only gradients do.
The redirected ReLU also reaches functional calls (``F.relu``, ``torch.relu``, ``x.relu()``,
``F.relu6``) inside a user's ``forward``, through a torch function mode active only inside the
block; in-place calls (``F.relu_``, ``inplace=True``) and TorchScript code are left as they are
and counted, so a render can say that it could not fix them.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

REDIRECT_STEPS = 16
"""Steps with the redirected gradient at the start of a render (Lucid's default)."""


@contextmanager
def redirected_relu(network: nn.Module, active: Callable[[], bool] = lambda: True,
                    functional: bool = False) -> Iterator[None]:
    """While ``active()`` is true, ReLU and ReLU6 modules use the redirected gradient.

    At a random start a unit behind a ReLU can be inactive everywhere, so no gradient flows and
    the image stays grey. The redirected gradient lets gradient through where it would move the
    input back into the active range; per batch item it is used only when the standard gradient
    of that item is all zero. ReLU6 is also flat above 6, so it is redirected there too.
    ``functional``: also redirect functional calls (a torch function mode; it slows every call of
    the forward pass, so only for networks that make such calls, see ``counting_functional_relus``).
    """

    def patch(module: nn.Module) -> Callable | None:
        if isinstance(module, nn.ReLU6):
            upper = 6.0
        elif isinstance(module, nn.ReLU):
            upper = None
        else:
            return None
        original = module.forward

        def forward(x: torch.Tensor) -> torch.Tensor:
            return _RedirectedReLU.apply(x, upper) if active() and torch.is_grad_enabled() else original(x)

        return forward

    with _patched(network, patch), (FunctionalReLUs(active) if functional else nullcontext()):
        yield


@contextmanager
def counting_functional_relus(network: nn.Module) -> Iterator[FunctionalReLUs]:
    """Inside the block, count the functional ReLU/ReLU6 calls ``network`` makes outside ReLU
    modules (``.redirected`` and in-place ``.left_alone``), changing no value: its ReLU modules
    compute the same clamp without a relu call. TorchScript code makes none that can be seen."""
    counter = FunctionalReLUs(active=lambda: True)
    counter.count_only = True

    def patch(module: nn.Module) -> Callable | None:  # module ReLUs compute without a relu call
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            upper = 6.0 if isinstance(module, nn.ReLU6) else None
            return lambda x: x.clamp(0.0, upper)
        return None

    with _patched(network, patch), counter:
        yield counter


class FunctionalReLUs(TorchFunctionMode):
    """Redirects functional ReLU and ReLU6 calls while ``active()``; counts those it must leave."""

    def __init__(self, active: Callable[[], bool] = lambda: True) -> None:
        super().__init__()
        self.active = active
        self.redirected = 0
        self.left_alone = 0
        """In-place functional calls: redirecting them would change what the caller sees."""
        self.count_only = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        upper = _relu_upper(func, args, kwargs)
        if upper is not _NOT_RELU and (self.count_only or (torch.is_grad_enabled() and self.active())):
            if _in_place(func, args, kwargs):
                self.left_alone += 1
            else:
                self.redirected += 1
                if not self.count_only:
                    return _RedirectedReLU.apply(args[0], upper)
        return func(*args, **kwargs)


_NOT_RELU = object()
_RELUS = {F.relu, torch.relu, torch.Tensor.relu}
_RELU6S = {F.relu6}
_IN_PLACE = {torch.relu_, torch.Tensor.relu_, F.relu_}


def _relu_upper(func, args: tuple, kwargs: dict):
    """None for a ReLU call, 6.0 for a ReLU6 (or hardtanh(0, 6)) call, else ``_NOT_RELU``."""
    if func in _RELUS or func in _IN_PLACE:
        return None
    if func in _RELU6S:
        return 6.0
    if func is F.hardtanh:
        low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
        high = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
        if low == 0.0 and high == 6.0:
            return 6.0
    return _NOT_RELU


def _in_place(func, args: tuple, kwargs: dict) -> bool:
    if func in _IN_PLACE:
        return True
    position = 3 if func is F.hardtanh else 1
    return bool(args[position] if len(args) > position else kwargs.get("inplace", False))


@functools.lru_cache(maxsize=None)  # a handful of (bound, dtype) pairs; called in every backward
def _outside(bound: float, dtype: torch.dtype, direction: float) -> float:
    """The next value of ``dtype`` after ``bound`` towards ``direction``."""
    return torch.nextafter(torch.tensor(bound, dtype=dtype), torch.tensor(direction * float("inf"), dtype=dtype)).item()


class _RedirectedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, upper: float | None) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0.0, upper) if upper is not None else x.clamp(min=0.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        upper = ctx.upper
        # the standard gradient, where 0 <= x <= upper, by torch's fused kernels for relu and relu6
        # (open intervals: the bounds are moved out by one step of x's dtype to include the ends)
        below, above = _outside(0.0, x.dtype, -1.0), None if upper is None else _outside(upper, x.dtype, 1.0)
        standard = (torch.ops.aten.threshold_backward(grad, x, below) if upper is None
                    else torch.ops.aten.hardtanh_backward(grad, x, below, above))
        dims = tuple(range(1, grad.dim()))  # an item's dims (flatten would copy a channels-last tensor)
        has_standard = torch.linalg.vector_norm(standard, dim=dims) > 0 if dims else standard.norm() > 0
        if bool(has_standard.all()):  # the common case, and the cheap one: nothing to redirect
            return standard, None
        if dims and not bool((~has_standard & grad.any(dim=dims)).any()):
            return standard, None  # the items without a standard gradient get no gradient here at all
        # grad > 0 means the descent step lowers y: never push a negative input lower,
        # nor (ReLU6) a saturated input higher.
        blocked = (x < 0) & (grad > 0)
        if upper is not None:
            blocked |= (x > upper) & (grad < 0)
        redirected = grad.masked_fill(blocked, 0.0)
        keep = has_standard.view(-1, *([1] * (grad.dim() - 1))) if grad.dim() > 1 else has_standard
        return torch.where(keep, standard, redirected), None


@contextmanager
def smooth_maxpool(network: nn.Module, variant: str = "l2", eps: float = 1e-2) -> Iterator[None]:
    """Max-pool modules keep their forward value but take the gradient of a smooth surrogate.

    ``l2``: ``avgpool(x^2) / (eps + avgpool(|x|))``, an activation-weighted mean of each window
    (Building Blocks' attribution); ``avg``: ``avgpool(x)``, an even split (linearization).
    """
    if variant not in ("l2", "avg"):
        raise ValueError(f"unknown smooth max-pool variant '{variant}': choose 'l2' or 'avg'")

    def patch(module: nn.Module) -> Callable | None:
        if not isinstance(module, nn.MaxPool2d):
            return None
        original = module.forward

        def pool(x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(x, module.kernel_size, module.stride, module.padding,
                                ceil_mode=module.ceil_mode, count_include_pad=False)

        def forward(x: torch.Tensor) -> torch.Tensor:
            surrogate = pool(x) if variant == "avg" else pool(x * x) / (eps + pool(x.abs()))
            return surrogate + (original(x) - surrogate).detach()

        return forward

    with _patched(network, patch):
        yield


@contextmanager
def linearized(network: nn.Module) -> Iterator[None]:
    """ReLU/ReLU6 backward = identity and max-pool backward = avg-pool backward: the input ->
    layer map becomes linear for gradients, so they no longer depend on the input."""

    def patch(module: nn.Module) -> Callable | None:
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            upper = 6.0 if isinstance(module, nn.ReLU6) else None
            return lambda x: x + (x.clamp(0.0, upper) - x).detach()  # never in place
        return None

    with _patched(network, patch), smooth_maxpool(network, "avg"):
        yield


@contextmanager
def linear_forward(network: nn.Module) -> Iterator[None]:
    """ReLU and ReLU6 modules compute the identity and max-pools an average pool, forward and
    backward: the network between any two layers becomes affine (its gradients are the expanded
    weights). Restored on exit."""

    def patch(module: nn.Module) -> Callable | None:
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            return lambda x: x
        if isinstance(module, nn.MaxPool2d):
            return lambda x, m=module: F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode,
                                                   count_include_pad=False)
        return None

    with _patched(network, patch):
        yield


@contextmanager
def frozen_weights(network: nn.Module) -> Iterator[None]:
    """Parameters need no gradients while images are optimized; the flags are restored after."""
    flags = [(p, p.requires_grad) for p in network.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextmanager
def _patched(network: nn.Module, make_forward: Callable[[nn.Module], Callable | None]) -> Iterator[None]:
    patched = []
    try:
        for module in network.modules():
            if "forward" in module.__dict__:
                continue  # already patched by an enclosing override: leave it alone
            forward = make_forward(module)
            if forward is not None:
                module.forward = forward
                patched.append(module)
        yield
    finally:
        for module in patched:
            del module.forward
