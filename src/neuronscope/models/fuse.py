"""A faster copy of a model for optimization: BatchNorm folded into the preceding convolution.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution
with scaled weights and a bias. Folding removes a memory-bound pass over every activation in
the forward and the backward pass; with channels-last memory it roughly halves the cost of a
render step on a CPU. Module names are kept (the BatchNorm becomes an ``Identity`` whose output
is the BatchNorm's output), so every layer address still means the same tensor, except a
folded convolution's own output, which is why the caller names the layers it will read.
The copy is checked against the original on a probe input; if anything differs by more than
float rounding, the original is returned.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from ..capture import capture
from .digest import weights_version
from .model import Model

MAX_COPIES = 4
"""Fast copies kept per model (one per set of layers an objective keeps unfolded)."""
TOLERANCE = 1e-3
"""Largest relative difference of any layer output between the folded copy and the original."""


def folded_copy(model: Model, keep: Iterable[str] = ()) -> Model:
    """A copy of ``model`` with every (Conv2d, BatchNorm2d) pair that runs back to back folded,
    except pairs whose convolution output is in ``keep``. The original is not changed."""
    keep = set(keep)
    modules = dict(model.module.named_modules())
    order = [info.name for info in model.all_layers()]
    pairs = [
        (conv, bn) for conv, bn in zip(order, order[1:])
        if conv not in keep and _foldable(modules.get(conv), modules.get(bn))
    ]
    if not pairs:
        return model
    network = copy.deepcopy(model.module)
    copied = dict(network.named_modules())
    for conv_name, bn_name in pairs:
        _fold(copied[conv_name], copied[bn_name])
        parent, _, attribute = bn_name.rpartition(".")
        setattr(copied[parent] if parent else network, attribute, nn.Identity())
    fast = _like(model, network)
    return fast if _agrees(model, fast, [n for n in order if n in copied and n not in {c for c, _ in pairs}]) else model


def fast_copy(model: Model, keep: Iterable[str] = ()) -> tuple[Model, torch.memory_format]:
    """The model to optimize images with, and the memory format its inputs should have: a folded
    copy in channels-last memory when anything could be folded, else the model itself (untouched).

    The copy is made and verified once per model, layers kept, weights, device and dtype, and
    kept on the model for the next call (a gallery renders many chunks with the same copy); a
    change of the weights in place (training, ``load_state_dict``) makes a new one."""
    keep = frozenset(keep)
    key = (keep, weights_version(model), str(model.device), model.dtype)
    cache = model.__dict__.setdefault("_fast_copies", {})
    if key not in cache:
        if len(cache) >= MAX_COPIES:
            cache.pop(next(iter(cache)))
        cache[key] = _fast_copy(model, keep)
    return cache[key]


def _fast_copy(model: Model, keep: frozenset[str]) -> tuple[Model, torch.memory_format]:
    fast = folded_copy(model, keep)
    if fast is model:
        return model, torch.contiguous_format
    fast.module.to(memory_format=torch.channels_last)  # a private copy: safe to change its layout
    return fast, torch.channels_last


def _foldable(conv: nn.Module | None, bn: nn.Module | None) -> bool:
    return (
        isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training
        and bn.track_running_stats and bn.running_mean is not None and conv.out_channels == bn.num_features
    )


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else torch.zeros_like(bn.running_mean)) - bn.running_mean * scale
    bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
    conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter(bias * scale + shift, requires_grad=conv.weight.requires_grad)


def _like(model: Model, network: nn.Module) -> Model:
    clone = copy.copy(model)
    clone.__dict__.pop("_fast_copies", None)
    clone.module = network
    clone._modules = {n: m for n, m in network.named_modules() if n}
    return clone


@torch.no_grad()
def _agrees(original: Model, fast: Model, layers: list[str]) -> bool:
    """Do both models give the same outputs at every comparable layer on a probe input?"""
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(2, original.input_channels, 64, 64, generator=generator).to(original.device, original.dtype)
    with capture(original, layers, stop_early=False, strict=False) as a, capture(fast, layers, stop_early=False, strict=False) as b:
        expected, actual = a(probe), b(probe)
    for name, value in expected.items():
        scale = value.abs().max().clamp(min=1e-6)
        if name not in actual or ((actual[name] - value).abs().max() / scale) > TOLERANCE:
            return False
    return True
