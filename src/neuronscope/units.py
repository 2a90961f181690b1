"""Unit addresses: one parser for every way to name what a technique looks at.

    layer                  a whole layer            blocks.4.2
    layer:channel          one channel              blocks.4.2:17
    layer:channel@x,y      one neuron (x = column)  blocks.4.2:17@3,4
    logits:class           a class, by index or     logits:281, logits:tabby
                           by label name

Positions are (x, y) = (column, row) in the layer's output at the model's input size; note
that Lucid's ``neuron(x, y)`` uses x for the row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import NeuronscopeError
from .names import LOGITS

if TYPE_CHECKING:
    from .models.model import Model


@dataclass(frozen=True)
class Unit:
    """A validated address: a layer, optionally a channel, optionally a spatial position."""

    layer: str
    channel: int | None = None
    position: tuple[int, int] | None = None
    """(x, y): column and row in the layer's output."""

    def __str__(self) -> str:
        text = self.layer
        if self.channel is not None:
            text += f":{self.channel}"
        if self.position is not None:
            text += f"@{self.position[0]},{self.position[1]}"
        return text

    @property
    def is_class(self) -> bool:
        return self.layer == LOGITS


def parse_unit(model: Model, address: str) -> Unit:
    """Parse and validate a unit address against ``model``.

    Errors name the problem and the valid choices: an unknown layer gets the three closest
    names, a channel out of range gets the range, a position outside the layer gets its size.
    """
    text = address.strip()
    if not text:
        raise NeuronscopeError("empty unit address: expected layer, layer:channel, layer:channel@x,y or logits:class")
    layer, _, rest = text.partition(":")
    info = model.layer(layer.strip())
    if not rest:
        if "@" in layer:
            raise NeuronscopeError(f"'{address}': a position needs a channel, as in {info.name}:0@x,y")
        return Unit(info.name)
    channel_text, _, position_text = rest.partition("@")
    channel = _channel(channel_text.strip(), info.name, info.channels, model, address)
    position = _position(position_text, info.spatial, address) if position_text else None
    return Unit(info.name, channel, position)


def parse_units(model: Model, addresses: list[str] | tuple[str, ...]) -> list[Unit]:
    """Parse several addresses (see ``parse_unit``)."""
    return [parse_unit(model, a) for a in addresses]


def _channel(text: str, layer: str, channels: int, model: Model, address: str) -> int:
    if not text:
        raise NeuronscopeError(f"'{address}': missing channel after ':' (0..{channels - 1})")
    if text.lstrip("-").isdigit():
        channel = int(text)
    elif layer == LOGITS:
        channel = model.class_index(text)
    else:
        raise NeuronscopeError(f"'{address}': channel must be a number in 0..{channels - 1}, got '{text}'")
    if not 0 <= channel < channels:
        raise NeuronscopeError(f"channel {channel} is out of range for layer '{layer}': it has channels 0..{channels - 1}")
    return channel


def _position(text: str, spatial: tuple[int, int] | None, address: str) -> tuple[int, int]:
    if spatial is None:
        raise NeuronscopeError(f"'{address}': this layer has no spatial positions, so '@x,y' does not apply")
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise NeuronscopeError(f"'{address}': position must be '@x,y' with integers, got '@{text}'")
    x, y = (int(p) for p in parts)
    height, width = spatial
    if not (0 <= x < width and 0 <= y < height):
        raise NeuronscopeError(
            f"'{address}': position ({x}, {y}) is outside the layer's {width}x{height} grid "
            f"(x in 0..{width - 1}, y in 0..{height - 1})"
        )
    return (x, y)


def parse_target(model: Model, target: str | int) -> Unit:
    """What an attribution or caricature explains: a class (``281``, ``"tabby"``) or a unit
    address of a later layer (``"blocks.6.0:3"``)."""
    if not isinstance(target, str) or ":" not in target:
        return Unit(LOGITS, model.class_index(target))
    return parse_unit(model, target)


def unit_score(activations: dict, unit: Unit, item: int = 0):
    """A unit's scalar score in batch item ``item``: a neuron's value, a channel's mean, a class
    logit, or for a whole layer the sum of squares."""
    values = activations[unit.layer][item]
    if unit.channel is None:
        return values.pow(2).sum()
    values = values[unit.channel]
    if unit.position is not None:
        x, y = unit.position
        return values[y, x]
    return values.mean() if values.dim() else values
