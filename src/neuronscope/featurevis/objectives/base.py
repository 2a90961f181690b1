"""The `Objective` type: a function of activations with one value per batch item, its layers,
a name and a spec; ``+ - * /`` and ``sum()`` build new objectives and never change their operands."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import NeuronscopeError
from ...names import INPUT

Activations = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """A function of activations giving a value per batch item (higher is better)."""

    fn: Callable[[Activations], torch.Tensor]
    layers: tuple[str, ...]
    name: str
    spec: dict[str, Any] | None = None
    """How to rebuild this objective with ``from_spec`` (None: a custom function, not rebuildable)."""
    needs_graph: bool = False
    """The function takes gradients itself (e.g. attribution directions), so even evaluating it
    needs autograd."""
    terms: tuple[Objective, ...] = ()
    """For a sum of objectives: its terms, flat, so that a sum of thousands (one per batch item)
    is evaluated in a loop rather than thousands of nested calls."""

    def __call__(self, acts: Activations) -> torch.Tensor:
        return self.fn(acts)

    @property
    def model_layers(self) -> tuple[str, ...]:
        """The layers to capture from the model (everything but the input image)."""
        return tuple(layer for layer in self.layers if layer != INPUT)

    def __add__(self, other: Objective | float) -> Objective:
        if isinstance(other, Real):
            return self._combine(lambda a: self(a) + float(other), self.layers, f"{self.name} + {other}",
                                 _sum_spec(self.spec, {"op": "constant", "value": float(other)}), self.needs_graph)
        other = _as_objective(other)
        terms = (*(self.terms or (self,)), *(other.terms or (other,)))
        name = f"{self.name} + {other.name}" if len(terms) <= 4 else f"sum of {len(terms)} objectives ({terms[0].name}, ...)"
        return Objective(lambda a: _total(terms, a), _union(self, other), name, _sum_spec(self.spec, other.spec),
                         self.needs_graph or other.needs_graph, terms)

    def __radd__(self, other: float) -> Objective:
        if isinstance(other, Real) and other == 0:  # sum() starts from 0
            return self
        return self + other

    def __neg__(self) -> Objective:
        return self._combine(lambda a: -self(a), self.layers, f"-({self.name})", _scale_spec(self.spec, -1.0),
                             self.needs_graph)

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __rsub__(self, other: float) -> Objective:
        return (-self) + other

    def __mul__(self, other: Objective | float) -> Objective:
        if isinstance(other, Real):
            return self._combine(lambda a: float(other) * self(a), self.layers, f"{other} * {self.name}",
                                 _scale_spec(self.spec, float(other)), self.needs_graph)
        other = _as_objective(other)
        spec = None if self.spec is None or other.spec is None else {"op": "product", "factors": [self.spec, other.spec]}
        return self._combine(lambda a: self(a) * other(a), _union(self, other), f"({self.name}) * ({other.name})",
                             spec, self.needs_graph or other.needs_graph)

    __rmul__ = __mul__

    def __truediv__(self, other: float) -> Objective:
        if not isinstance(other, Real) or other == 0:
            raise NeuronscopeError(f"an objective can only be divided by a non-zero number, not {other!r}")
        return self * (1.0 / float(other))

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    @staticmethod
    def _combine(fn, layers, name, spec, needs_graph) -> Objective:
        return Objective(fn, layers, name, spec, needs_graph)


def _total(terms: tuple[Objective, ...], acts: Activations) -> torch.Tensor:
    acts = acts if isinstance(acts, _Split) else _Split(acts)
    value = terms[0](acts)
    for term in terms[1:]:
        value = value + term(acts)
    return value


def _sum_spec(a: dict | None, b: dict | None) -> dict | None:
    if a is None or b is None:
        return None
    terms = [*(a["terms"] if a["op"] == "sum" else [a]), *(b["terms"] if b["op"] == "sum" else [b])]
    return {"op": "sum", "terms": terms}


def _scale_spec(spec: dict | None, by: float) -> dict | None:
    return None if spec is None else {"op": "scale", "by": by, "of": spec}


def _as_objective(value: object) -> Objective:
    if not isinstance(value, Objective):
        raise NeuronscopeError(f"cannot combine an objective with {type(value).__name__}")
    return value


def _union(a: Objective, b: Objective) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.layers + b.layers))


def per_item(fn, batch: int | None):
    """``fn`` evaluated on item ``batch`` of the activations alone, zero for the other items (all
    items when batch is None). A sum of N such objectives then costs N items, not N x N."""
    if batch is None:
        return fn

    def item(acts: Activations) -> torch.Tensor:
        view = _ItemView(acts if isinstance(acts, _Split) else _Split(acts), batch)
        value = fn(view)
        return F.pad(value, (view.index, view.size - view.index - 1))

    return item


class _ItemView(Mapping):
    """The activations of one batch item, (1, ...) each, taken from the split when looked up."""

    def __init__(self, acts: _Split, batch: int) -> None:
        self.acts, self.batch = acts, batch
        self.size, self.index = 0, 0

    def __getitem__(self, key: str) -> torch.Tensor:
        tensor = self.acts[key]
        size = tensor.shape[0]
        if not -size <= self.batch < size:
            raise NeuronscopeError(f"batch index {self.batch} is out of range for a batch of {size}")
        self.size, self.index = size, self.batch % size
        return self.acts.item(key, self.index)

    def __iter__(self):
        return iter(self.acts)

    def __len__(self) -> int:
        return len(self.acts)


class _Split(Mapping):
    """The activations of one evaluation of a sum, each cut into its items once and shared by
    the per-item terms: the backward pass then joins the items' gradients once, instead of
    filling a full-size zero gradient for every term's slice (N x N work for N items)."""

    def __init__(self, acts: Activations) -> None:
        self.acts = acts
        self.pieces: dict[str, tuple[torch.Tensor, ...]] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.acts[key]

    def item(self, key: str, index: int) -> torch.Tensor:
        if key not in self.pieces:
            self.pieces[key] = self.acts[key].split(1)
        return self.pieces[key][index]

    def __iter__(self):
        return iter(self.acts)

    def __len__(self) -> int:
        return len(self.acts)
