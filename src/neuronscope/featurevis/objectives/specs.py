"""Objectives as data: every constructor of the catalogue records its own call as a ``spec``
(plain JSON, vectors as lists), and ``from_spec`` rebuilds the same objective from it, so a
manifest can name exactly what an image maximizes. The algebra's specs (sum, scale, product,
constant) are read here too."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch

from ...errors import NeuronscopeError
from .base import Objective

_CONSTRUCTORS: dict[str, Callable[..., Objective]] = {}


def recorded(make: Callable[..., Objective]) -> Callable[..., Objective]:
    """Register a constructor and give what it builds a ``spec`` of its own call."""
    signature = inspect.signature(make)

    @functools.wraps(make)
    def build(*args, **kwargs) -> Objective:
        objective = make(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        spec = {"op": make.__name__, **{k: _to_json(v) for k, v in bound.arguments.items()}}
        return replace(objective, spec=spec)

    _CONSTRUCTORS[make.__name__] = build
    return build


def from_spec(spec: Mapping[str, Any]) -> Objective:
    """The objective a ``spec`` describes (the inverse of ``Objective.spec``)."""
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise NeuronscopeError(f"not an objective spec (a dict with 'op'): {spec!r}")
    op = spec["op"]
    if op == "sum":
        return sum((from_spec(term) for term in spec["terms"][1:]), from_spec(spec["terms"][0]))
    if op == "constant":
        return _constant(float(spec["value"]))
    if op == "scale":
        return float(spec["by"]) * from_spec(spec["of"])
    if op == "product":
        first, second = (from_spec(f) for f in spec["factors"])
        return first * second
    if op not in _CONSTRUCTORS:
        raise NeuronscopeError(f"unknown objective '{op}' in a spec: choose one of {', '.join(sorted(_CONSTRUCTORS))}")
    return _CONSTRUCTORS[op](**{k: _from_json(v) for k, v in spec.items() if k != "op"})


def _to_json(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().cpu().double().tolist()}
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return {"tensor": value.tolist()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return torch.tensor(value["tensor"], dtype=torch.float32)
    return value


def _constant(value: float) -> Objective:
    """0 + value as an objective (only as a term of a sum, which supplies the batch size)."""
    return Objective(lambda a: value, (), str(value), {"op": "constant", "value": value})
