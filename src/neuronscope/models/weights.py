"""Loading a weights file into a network: strict, with one-line errors that name the expected layout."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ..errors import NeuronscopeError

StateDict = Mapping[str, torch.Tensor]


def read_state_dict(path: str | Path, expected: str) -> dict[str, torch.Tensor]:
    """The tensors saved in ``path`` (``torch.save(module.state_dict())``; a dict holding one under
    ``state_dict`` or ``model`` is unwrapped). ``expected`` describes the layout in errors."""
    path = Path(path)
    if not path.is_file():
        raise NeuronscopeError(f"weights file '{path}' does not exist; expected {expected}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise NeuronscopeError(f"weights file '{path}' is not a readable torch state dict ({first[:120]}); "
                               f"expected {expected}") from None
    if isinstance(raw, nn.Module):
        raw = raw.state_dict()
    for key in ("state_dict", "model"):
        if isinstance(raw, Mapping) and isinstance(raw.get(key), Mapping):
            raw = raw[key]
    if not isinstance(raw, Mapping) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise NeuronscopeError(f"weights file '{path}' holds {type(raw).__name__}, not a state dict of tensors; "
                               f"expected {expected}")
    return dict(raw)


def load_state_dict_strict(network: nn.Module, state: StateDict, source: str, expected: str) -> None:
    """``network.load_state_dict(state, strict=True)``, with a mismatch reported in one line:
    how many keys are missing or unexpected, one example of each, and the expected layout."""
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. '{unexpected[0]}')")
        if shapes:
            key = shapes[0]
            parts.append(f"{len(shapes)} wrong shapes (e.g. '{key}': {tuple(state[key].shape)}, "
                         f"expected {tuple(own[key].shape)})")
        raise NeuronscopeError(f"{source} does not fit {type(network).__name__}: {'; '.join(parts)}; expected {expected}")
    network.load_state_dict(state, strict=True)


def load_weights_file(network: nn.Module, path: str | Path, expected: str,
                      convert: Callable[[dict[str, torch.Tensor]], StateDict] | None = None) -> None:
    """Load the state dict in ``path`` into ``network`` strict (``convert`` renames its keys first)."""
    state = read_state_dict(path, expected)
    if convert is not None:
        state = convert(state)
    load_state_dict_strict(network, state, f"weights file '{path}'", expected)


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
