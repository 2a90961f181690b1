"""Objectives: what an optimized image should maximize, as immutable values.

An `Objective` maps the captured activations (a dict: layer name -> tensor, plus ``"input"``
for the image itself) to one value per batch item, shape (B,). The render loop maximizes the
sum over items. Objectives combine with ``+``, ``-``, ``*``, ``/`` and ``sum()`` into new
objectives; operands are never changed. Each declares the layers it reads, so rendering hooks
only those and stops the forward pass after the deepest.

Every constructor takes ``batch``: ``None`` applies the objective to every item, an int to that
item only (0 elsewhere), so one render can hold many units.

Every objective built from these constructors and the algebra carries a ``spec``: plain JSON
(vectors as lists) from which ``from_spec`` rebuilds the same objective, so a manifest can name
exactly what an image maximizes. An objective made from a custom function has ``spec=None``.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import NeuronscopeError
from ..names import INPUT
from .objective import Activations, Objective, per_item

COSINE_FLOOR = 0.1
EPS = 1e-4


# --- specs: objectives as data ----------------------------------------------------------------

_CONSTRUCTORS: dict[str, Callable[..., Objective]] = {}


def _recorded(make: Callable[..., Objective]) -> Callable[..., Objective]:
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


def _constant(value: float) -> Objective:
    """0 + value as an objective (only as a term of a sum, which supplies the batch size)."""
    return Objective(lambda a: value, (), str(value), {"op": "constant", "value": value})


def _only(values: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Keep item ``batch`` of a (B,) tensor, zero elsewhere (all items when batch is None)."""
    if batch is None:
        return values
    if not -values.shape[0] <= batch < values.shape[0]:
        raise NeuronscopeError(f"batch index {batch} is out of range for a batch of {values.shape[0]}")
    mask = torch.zeros_like(values)
    mask[batch] = 1.0
    return values * mask


def _suffix(batch: int | None) -> str:
    return "" if batch is None else f"[{batch}]"


def _position(grid: tuple[int, int], x: int | None, y: int | None, layer: str, what: str) -> tuple[int, int]:
    """(column, row) of a position on a (height, width) grid, the centre by default, checked."""
    height, width = grid
    col, row = (width // 2 if x is None else x), (height // 2 if y is None else y)
    if not (0 <= col < width and 0 <= row < height):
        raise NeuronscopeError(f"{what} ({col}, {row}) is outside layer '{layer}', which is {width}x{height} at this input size")
    return col, row


def _channel_values(act: torch.Tensor, channel: int, layer: str) -> torch.Tensor:
    if not 0 <= channel < act.shape[1]:
        raise NeuronscopeError(f"channel {channel} is out of range for layer '{layer}': it has channels 0..{act.shape[1] - 1}")
    return act[:, channel]


# --- units ----------------------------------------------------------------------------------


@_recorded
def channel(layer: str, index: int, batch: int | None = None) -> Objective:
    """Mean activation of one channel over positions."""

    def fn(acts: Activations) -> torch.Tensor:
        values = _channel_values(acts[layer], index, layer)
        return values.flatten(1).mean(1) if values.dim() > 1 else values

    return Objective(per_item(fn, batch), (layer,), f"channel {layer}:{index}{_suffix(batch)}")


@_recorded
def channels(layer: str, indices: Sequence[int]) -> Objective:
    """Item i maximizes the mean of channel ``indices[i]``: a whole layer in one batch, vectorized."""
    index = torch.as_tensor(list(indices), dtype=torch.long)

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        if act.shape[0] != len(index):
            raise NeuronscopeError(f"channels objective for {len(index)} items got a batch of {act.shape[0]}")
        if int(index.max()) >= act.shape[1] or int(index.min()) < 0:
            raise NeuronscopeError(f"channels out of range for layer '{layer}': it has channels 0..{act.shape[1] - 1}")
        picked = act[torch.arange(len(index), device=act.device), index.to(act.device)]
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked

    return Objective(fn, (layer,), f"channels {layer}:{list(indices)}")


@_recorded
def neuron(layer: str, index: int, x: int | None = None, y: int | None = None, batch: int | None = None) -> Objective:
    """One position of one channel: column ``x``, row ``y`` (default: the centre, W//2 and H//2)."""

    def fn(acts: Activations) -> torch.Tensor:
        values = _channel_values(acts[layer], index, layer)
        if values.dim() != 3:
            raise NeuronscopeError(f"layer '{layer}' has no spatial positions; use a channel objective")
        col, row = _position(values.shape[1:], x, y, layer, "neuron")
        return values[:, row, col]

    where = "centre" if x is None and y is None else f"{x},{y}"
    return Objective(per_item(fn, batch), (layer,), f"neuron {layer}:{index}@{where}{_suffix(batch)}")


@_recorded
def layer(name: str, batch: int | None = None) -> Objective:
    """DeepDream: the mean squared activation of a whole layer."""
    return Objective(per_item(lambda acts: acts[name].pow(2).flatten(1).mean(1), batch), (name,), f"layer {name}{_suffix(batch)}")


deepdream = layer


@_recorded
def class_logit(index: int, batch: int | None = None, layer_name: str = "logits") -> Objective:
    """The pre-softmax logit of a class (better pictures than the probability)."""
    return Objective(per_item(lambda acts: acts[layer_name][:, index], batch), (layer_name,), f"logit {index}{_suffix(batch)}")


@_recorded
def class_probability(index: int, batch: int | None = None, layer_name: str = "logits") -> Objective:
    """The softmax probability of a class (also pushes the other classes down)."""
    return Objective(
        per_item(lambda acts: acts[layer_name].softmax(1)[:, index], batch), (layer_name,), f"probability {index}{_suffix(batch)}"
    )


# --- directions -----------------------------------------------------------------------------


@_recorded
def direction(layer: str, vector: torch.Tensor, cosine_power: float = 0.0, batch: int | None = None) -> Objective:
    """Mean over positions of ``<a_p, v> * max(0.1, cos(a_p, v))^p``; ``v`` is not normalized.

    With p = 0 it is the plain dot product (``direction(L, e_c)`` equals ``channel(L, c)``).
    The cosine floor keeps the optimizer from maximizing the opposite direction.
    """
    v = torch.as_tensor(vector, dtype=torch.float32).flatten()

    def fn(acts: Activations) -> torch.Tensor:
        vectors = _position_vectors(acts[layer], v, layer)
        return _dot_cos(vectors, v.to(vectors), cosine_power).mean(1)

    return Objective(per_item(fn, batch), (layer,), f"direction {layer} (p={cosine_power}){_suffix(batch)}")


@_recorded
def direction_neuron(layer: str, vector: torch.Tensor, x: int | None = None, y: int | None = None,
                     cosine_power: float = 0.0, batch: int | None = None) -> Objective:
    """``direction`` at one position (default: the centre)."""
    v = torch.as_tensor(vector, dtype=torch.float32).flatten()

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        if act.dim() != 4:
            raise NeuronscopeError(f"layer '{layer}' has no spatial positions; use direction()")
        col, row = _position(act.shape[2:], x, y, layer, "position")
        vectors = _position_vectors(act[:, :, row : row + 1, col : col + 1], v, layer)
        return _dot_cos(vectors, v.to(vectors), cosine_power)[:, 0]

    return Objective(per_item(fn, batch), (layer,), f"direction-neuron {layer} (p={cosine_power}){_suffix(batch)}")


def _position_vectors(act: torch.Tensor, v: torch.Tensor, layer: str) -> torch.Tensor:
    """(B, C[, H, W]) -> (B, positions, C), checking the vector length."""
    if act.shape[1] != v.numel():
        raise NeuronscopeError(f"direction has {v.numel()} entries but layer '{layer}' has {act.shape[1]} channels")
    return act.flatten(2).transpose(1, 2) if act.dim() > 2 else act.unsqueeze(1)


def _dot_cos(vectors: torch.Tensor, v: torch.Tensor, power: float) -> torch.Tensor:
    return dot_cosine(vectors @ v, vectors.norm(dim=-1), v.norm(), power)


def dot_cosine(dot: torch.Tensor, norm_a: torch.Tensor, norm_b: torch.Tensor, power: float) -> torch.Tensor:
    """``dot * max(0.1, cos)^p`` with ``cos = dot / ((eps + |a|)(eps + |b|))``: the one cosine-weighted
    dot product of directions, direction neurons and caricatures."""
    if power == 0:
        return dot
    cos = dot / ((EPS + norm_a) * (EPS + norm_b))
    return dot * cos.clamp(min=COSINE_FLOOR) ** power


# --- diversity and interpolation ------------------------------------------------------------


@_recorded
def diversity(layer: str, items: Sequence[int] | None = None) -> Objective:
    """Gram-matrix similarity between batch items (Lucid's sign: a similarity, >= 0 for
    non-negative layers). Use it as ``objective - weight * diversity(layer)``.

    Item b gets ``sum_{b' != b} <G_b, G_b'> / n`` with ``G`` the Frobenius-normalized Gram of its
    (positions x channels) activations, over the ``items`` given (default: the whole batch).
    ``n`` identical images score ``n - 1`` in total.
    """

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        chosen = list(range(act.shape[0])) if items is None else list(items)
        flat = act[chosen].flatten(2)  # (n, C, positions)
        grams = flat @ flat.transpose(1, 2)
        grams = grams.flatten(1)
        grams = grams / (grams.norm(dim=1, keepdim=True) + 1e-10)
        similarity = grams @ grams.T
        per_item = (similarity.sum(1) - similarity.diagonal()) / len(chosen)
        out = torch.zeros(act.shape[0], dtype=act.dtype, device=act.device)
        return out.index_add(0, torch.as_tensor(chosen, device=act.device), per_item)

    return Objective(fn, (layer,), f"diversity {layer}")


@_recorded
def alignment(layer: str, decay_ratio: float = 2.0) -> Objective:
    """Already negated: ``-sum_{d=1..4} sum_i mean((a_i - a_{i+d})^2) / r^d`` (smooth interpolations)."""

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[layer]
        out = torch.zeros(act.shape[0], dtype=act.dtype, device=act.device)
        for d in range(1, 5):
            if d >= act.shape[0]:
                break
            diffs = (act[:-d] - act[d:]).pow(2).flatten(1).mean(1) / decay_ratio**d
            out = out.index_add(0, torch.arange(act.shape[0] - d, device=act.device), -diffs)
        return out

    return Objective(fn, (layer,), f"alignment {layer}")


@_recorded
def channel_interpolate(layer_a: str, index_a: int, layer_b: str, index_b: int) -> Objective:
    """Item n of B weighs ``(1 - n/(B-1)) * channel A + n/(B-1) * channel B``."""

    def fn(acts: Activations) -> torch.Tensor:
        a = _channel_values(acts[layer_a], index_a, layer_a).flatten(1).mean(1)
        b = _channel_values(acts[layer_b], index_b, layer_b).flatten(1).mean(1)
        weights = torch.linspace(0, 1, a.shape[0], device=a.device, dtype=a.dtype)
        return (1 - weights) * a + weights * b

    return Objective(fn, tuple(dict.fromkeys((layer_a, layer_b))), f"interpolate {layer_a}:{index_a} -> {layer_b}:{index_b}")


# --- penalties on the image (use with a negative weight) ------------------------------------


@_recorded
def l1(constant: float = 0.5, layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """``sum |t - constant|`` per item: a penalty, use ``objective - w * l1()``."""
    return Objective(
        per_item(lambda acts: (acts[layer_name] - constant).abs().flatten(1).sum(1), batch), (layer_name,), "L1"
    )


@_recorded
def total_variation(layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """Anisotropic total variation per item (sum of absolute neighbour differences): a penalty."""

    def fn(acts: Activations) -> torch.Tensor:
        t = acts[layer_name]
        dy = (t[:, :, 1:, :] - t[:, :, :-1, :]).abs().flatten(1).sum(1)
        dx = (t[:, :, :, 1:] - t[:, :, :, :-1]).abs().flatten(1).sum(1)
        return dx + dy

    return Objective(per_item(fn, batch), (layer_name,), "total variation")


@_recorded
def pixel_distance(target: torch.Tensor, layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """Mean squared difference per item between the image and ``target`` ((C, H, W) or (B, C, H, W)
    in [0, 1]): a penalty, use ``objective - w * pixel_distance(photo)`` to stay close to a photo."""
    reference = torch.as_tensor(target, dtype=torch.float32)

    def fn(acts: Activations) -> torch.Tensor:
        image = acts[layer_name]
        goal = reference.to(image)
        if goal.shape[-3:] != image.shape[-3:]:
            raise NeuronscopeError(f"pixel_distance target is {tuple(goal.shape[-3:])}, the images are {tuple(image.shape[-3:])}")
        return _only((image - goal).pow(2).flatten(1).mean(1), batch)  # a (B, ...) target: item by item

    return Objective(fn, (layer_name,), "pixel distance")


@_recorded
def blur_penalty(layer_name: str = INPUT, batch: int | None = None) -> Objective:
    """``1/2 sum (x - stopgrad(blur3(x)))^2`` per item: ascending ``-w *`` this blurs the image a bit
    each step (Lucid's ``blur_input_each_step``)."""

    def fn(acts: Activations) -> torch.Tensor:
        x = acts[layer_name]
        with torch.no_grad():
            blurred = _blur3(x)
        return 0.5 * (x - blurred).pow(2).flatten(1).sum(1)

    return Objective(per_item(fn, batch), (layer_name,), "blur")


def _blur3(x: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([[0.5, 0.5, 0.5], [0.5, 1.0, 0.5], [0.5, 0.5, 0.5]], dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    weight = kernel.expand(channels, 1, 3, 3).contiguous()
    summed = F.conv2d(x, weight, padding=1, groups=channels)
    norm = F.conv2d(torch.ones_like(x[:1]), weight, padding=1, groups=channels)
    return summed / norm
