"""The one way neuronscope runs a model: hook only the named layers, stop after the deepest.

    with capture(model, ["blocks.2", "blocks.4"]) as cap:
        acts = cap(images)          # dict: layer name -> output tensor

This module is the only place in the package that registers hooks. They are removed in
``finally``, so the model is left exactly as it was even when the body raises.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .errors import NeuronscopeError
from .names import LOGITS
from .tokens import grid_to_tokens, tokens_to_grid

if TYPE_CHECKING:
    from .models.model import Model


class _StopForward(BaseException):
    """Raised inside a hook once every requested layer has run, to skip the rest of the network.

    A ``BaseException``, so that a user's ``forward`` with ``try: ... except Exception:`` around a
    submodule call cannot swallow it and run on with the rest of the network."""


class Capture:
    """Runs the model and holds what the hooks saw. Created by ``capture``; call it with images."""

    def __init__(self, model: Model, layers: Sequence[str], grads: bool, stop_early: bool, strict: bool,
                 replace: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                 tokens: Mapping[str, int] | None = None) -> None:
        self.model = model
        self.tokens = dict(tokens or {})
        """Token layers among ``layers``: name -> number of tokens before the patch grid."""
        self.prefix_tokens: dict[str, torch.Tensor] = {}
        """For each token layer, its leading (class) tokens of the last call, (B, prefix, D)."""
        self._image_size: tuple[int, int] = model.input_size
        self.fixed_size = strict and model.fixed_input_size  # probed here, before any hook is in place
        self.replace = dict(replace or {})
        self.layers = tuple(dict.fromkeys(layers))
        self.grads = grads
        self.strict = strict
        self.stop_early = stop_early and LOGITS not in self.layers
        self.activations: dict[str, torch.Tensor] = {}
        self.output: torch.Tensor | None = None
        """The model output of the last call; None when the forward pass stopped early."""
        self.gradients: dict[str, torch.Tensor] = {}
        self.calls: Counter[str] = Counter()
        self.run_order: list[str] = []
        self._versions: dict[str, int] = {}
        self._originals: dict[str, torch.Tensor] = {}
        self.derived: dict[str, list] = {}
        """Requested derived layers (``models.derived``) by the parent layer they read."""
        for name in self.layers:
            if name in model.derived:
                self.derived.setdefault(model.derived[name].parent, []).append(model.derived[name])
        self._hooked = {name for name in self.layers if name != LOGITS and name not in model.derived} | set(self.derived)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalize ``images`` (B, C, H, W in the model's value range) and run the forward pass
        up to the deepest requested layer. Returns the activations, in the order requested."""
        if self.grads and not torch.is_grad_enabled():
            raise NeuronscopeError("capture(grads=True) needs autograd: do not run it under torch.no_grad()")
        self.activations.clear()
        self.prefix_tokens.clear()
        self._image_size = (int(images.shape[-2]), int(images.shape[-1]))
        self.gradients.clear()
        self.calls.clear()
        self.run_order.clear()
        self._versions.clear()
        self._originals.clear()
        self.output = None
        if self.fixed_size and tuple(images.shape[-2:]) != self.model.input_size:
            # a network that only runs at its own size sees every image resized to it
            images = F.interpolate(images, size=self.model.input_size, mode="bilinear", align_corners=False, antialias=True)
            self._image_size = self.model.input_size
        try:
            with _autocast(self.model):
                self.output = self.model.module(self.model.normalize(images))
        except _StopForward:
            pass
        if LOGITS in self.layers:
            self._store(LOGITS, self.output)
        if self.strict:
            self._check()
        found = {name: self.activations[name] for name in self.layers if name in self.activations}
        if self.model.precision is not None:  # reduced-precision forward, float32 for everything after
            found = {name: value.float() for name, value in found.items()}
        return found

    def __getitem__(self, layer: str) -> torch.Tensor:
        return self.activations[layer]

    def hook(self, name: str):
        def on_forward(module, inputs, output):
            self.calls[name] += 1
            if self.calls[name] == 1:
                self.run_order.append(name)
            replacement = self._store(name, output)
            if self.stop_early and self._hooked.issubset(self.calls):
                raise _StopForward
            return replacement

        return on_forward

    def _store(self, name: str, output) -> torch.Tensor | None:
        if not isinstance(output, torch.Tensor):
            if self.strict:
                raise NeuronscopeError(f"layer '{name}' outputs {type(output).__name__}, not a tensor; capture a submodule")
            return None
        original = output
        version = output._version
        front = None
        if name in self.tokens:  # seen (and replaced) as its patch grid; the class token kept apart
            front, output = tokens_to_grid(output, self.tokens[name], self._image_size)
            self.prefix_tokens[name] = front
        replacement = None
        if name in self.replace:
            output = replacement = self.replace[name](output)
        if self.grads:
            if not output.requires_grad:
                # Make the layer output a leaf so gradients reach it even with frozen weights
                # and an input that does not require grad; the rest of the network uses it.
                output = replacement = output.detach().requires_grad_(True)
            elif front is not None and replacement is None:
                replacement = output  # the rest of the network runs through the grid, so its gradient is the grid's
            output.register_hook(lambda grad, name=name: self.gradients.__setitem__(name, grad))
        self.activations[name] = output
        for layer in self.derived.get(name, ()):
            edited = self._derive(name, layer, output)
            if edited is not None:  # the rest of the network (and the record) sees the edited output
                output = replacement = self.activations[name] = edited
        self._versions[name] = version if front is not None else output._version
        if front is not None:
            self._originals[name] = original
        return replacement if front is None or replacement is None else grid_to_tokens(front, replacement)

    def _derive(self, parent: str, layer, output: torch.Tensor) -> torch.Tensor | None:
        """Store a derived layer's values read from its parent's ``output``; when it is replaced,
        the parent's output that carries the new values (else None)."""
        values = layer.read(output)
        edited = None
        if layer.name in self.replace:
            changed = self.replace[layer.name](values)
            edited, values = layer.write(output, values, changed), changed
        if self.grads and values.requires_grad:
            values.register_hook(lambda grad, name=layer.name: self.gradients.__setitem__(name, grad))
        self.activations[layer.name] = values
        self.calls[layer.name] = self.calls[parent]
        if self.calls[parent] == 1:
            self.run_order.append(layer.name)
        self._versions[layer.name] = values._version
        return edited

    def _check(self) -> None:
        for name in self.layers:
            if name not in self.activations:
                raise NeuronscopeError(f"layer '{name}' did not run during the forward pass of {self.model.name}")
            if self.calls[name] > 1:
                raise NeuronscopeError(
                    f"layer '{name}' ran {self.calls[name]} times in one forward pass, so its output is ambiguous; "
                    "capture a module that runs once"
                )
            if self._originals.get(name, self.activations[name])._version != self._versions[name]:
                raise NeuronscopeError(
                    f"the output of layer '{name}' was changed in place by a later module (an inplace=True "
                    "activation?); capture that later module instead"
                )


class Copies:
    """A ``replace`` function for ``capture``: the rest of the network sees ``n`` copies of the
    layer's output, as one leaf tensor that requires grad, so one backward pass gives n gradients.
    ``check`` may inspect the original output first (and raise)."""

    def __init__(self, n: int, check: Callable[[torch.Tensor], None] | None = None) -> None:
        self.n, self.check = n, check
        self.tensor: torch.Tensor | None = None

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if self.check is not None:
            self.check(output)
        self.tensor = output.detach().expand(self.n, *output.shape[1:]).clone().requires_grad_(True)
        return self.tensor


def _autocast(model: Model):
    """The forward pass under autocast at ``model.precision`` (a no-op when it is None)."""
    if model.precision is None:
        return nullcontext()
    return torch.autocast(model.device.type, dtype=model.precision)


@contextmanager
def capture(
    model: Model,
    layers: str | Sequence[str],
    *,
    grads: bool = False,
    stop_early: bool = True,
    strict: bool = True,
    replace: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
) -> Iterator[Capture]:
    """Hook ``layers`` of ``model`` for the duration of the block.

    Args:
        model: the model to run.
        layers: module names (``model.layer`` validates them), derived layers of ``model``
            (``models.derived``: hooked through their parent), or ``"logits"`` for the output.
        grads: also record the gradient of each layer's output when ``backward`` runs
            (in ``Capture.gradients``).
        stop_early: stop the forward pass once every requested layer has run (ignored when
            ``"logits"`` is requested). Later modules never execute.
        strict: validate the names and the outputs (a layer must run once and output a tensor).
        replace: for some of the ``layers``, a function of the layer's output whose result the rest
            of the network sees instead (and which is recorded), e.g. copies of it along the batch.
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise NeuronscopeError("capture needs at least one layer")
    modules = dict(model.module.named_modules())
    tokens = {}
    if strict:
        for name in names:
            info = model.layer(name)
            if info.is_tokens:
                tokens[name] = info.prefix_tokens
    else:
        unknown = [n for n in names if n not in modules and n != LOGITS and n not in model.derived]
        if unknown:
            raise NeuronscopeError(f"unknown modules {unknown} in {model.name}")
    unknown = [n for n in (replace or {}) if n not in names]
    if unknown:
        raise NeuronscopeError(f"replace names layers {unknown} that are not captured")
    cap = Capture(model, names, grads=grads, stop_early=stop_early, strict=strict, replace=replace, tokens=tokens)
    handles = []
    try:
        for name in cap._hooked:
            handles.append(modules[name].register_forward_hook(cap.hook(name)))
        yield cap
    finally:
        for handle in handles:
            handle.remove()
