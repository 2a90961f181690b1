"""Layer discovery: one probe forward pass through `capture` records every module's output."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..capture import capture
from ..errors import NeuronscopeError
from ..names import LOGITS
from ..tokens import token_grid

if TYPE_CHECKING:
    from .model import Model


@dataclass(frozen=True)
class LayerInfo:
    """One addressable layer: a module name (or ``logits``) and what its output looks like."""

    name: str
    kind: str
    channels: int
    spatial: tuple[int, int] | None
    """(height, width) of the output at the model's default input size; None for vector outputs."""
    prefix_tokens: int | None = None
    """For a token layer (a (B, N, D) output, as in vision transformers): how many tokens come
    before the patch grid (1 for a class token). Captures show such a layer as a (B, D, H, W) grid
    of its patch tokens, like a convolution's output; None for every other layer."""

    @property
    def is_tokens(self) -> bool:
        return self.prefix_tokens is not None


_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.ELU, nn.Sigmoid, nn.Tanh,
                nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU, nn.Softplus)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


def module_kind(module: nn.Module) -> str:
    """A short, architecture-neutral description of what a module computes."""
    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels == module.out_channels:
            return "depthwise conv"
        if module.kernel_size == (1, 1):
            return "pointwise conv"
        return "conv"
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, _ACTIVATIONS):
        return "activation"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, _POOLS):
        return "pool"
    if isinstance(module, (nn.Sequential, nn.ModuleList)):
        return "stage"
    if any(True for _ in module.children()):
        return "block"
    return type(module).__name__.lower()


def accepts_other_sizes(model: Model) -> bool:
    """Whether the network runs on inputs larger than its default size (a transformer with fixed
    position embeddings does not): one probe pass at 1.25 x the size."""
    height, width = model.input_size
    probe = torch.zeros(1, model.input_channels, height + height // 4, width + width // 4,
                        device=model.device, dtype=model.dtype)
    try:
        with torch.no_grad():
            model.module(model.normalize(probe))
    except (RuntimeError, ValueError, TypeError, AssertionError):
        return False
    return True


def layer_table(model: Model) -> dict[str, LayerInfo]:
    """Every module of ``model`` that runs exactly once and outputs a (B, C[, H, W]) tensor or a
    (B, N, D) token tensor that reads as a patch grid, in the order it runs, plus ``logits`` for
    the model output, at the default input size."""
    # Submodules of a TorchScript model run compiled code that calls no Python hooks: only its
    # output (logits) can be captured.
    named = {n: m for n, m in model.module.named_modules() if n and not isinstance(m, torch.jit.ScriptModule)}
    probe = torch.zeros(1, model.input_channels, *model.input_size, device=model.device, dtype=model.dtype)
    with torch.no_grad(), capture(model, list(named) or [LOGITS], stop_early=False, strict=False) as cap:
        try:
            cap(probe)
        except (RuntimeError, ValueError, TypeError) as error:
            size = "x".join(map(str, model.input_size))
            raise NeuronscopeError(
                f"{model.name} failed on a probe input of shape (1, {model.input_channels}, {size}); "
                f"check input_size and input_channels ({type(error).__name__}: {str(error).splitlines()[0]})"
            ) from error
    table: dict[str, LayerInfo] = {}
    for name in cap.run_order:
        activation = cap.activations.get(name)
        if cap.calls[name] != 1 or activation is None:
            continue
        if activation.dim() == 3:
            grid = token_grid(activation.shape[1], model.input_size)
            if grid is not None:
                prefix, spatial = grid
                table[name] = LayerInfo(name, module_kind(named[name]), int(activation.shape[2]), spatial, prefix)
            continue
        if activation.dim() not in (2, 4):
            continue
        spatial = tuple(activation.shape[2:]) if activation.dim() == 4 else None
        table[name] = LayerInfo(name, module_kind(named[name]), int(activation.shape[1]), spatial)
    output = cap.output
    if isinstance(output, torch.Tensor) and output.dim() == 2:
        table[LOGITS] = LayerInfo(LOGITS, "logits", int(output.shape[1]), None)
    return table
