"""What a dataset-examples pass gives: per layer, each channel's top (and bottom) examples."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NeuronscopeError
from ..stream import PassConfig
from .receptive import field_span

FORMAT = "dataset-examples-v1"
"""Version of the cached files; a change makes old caches misses, never wrong answers."""


@dataclass(frozen=True)
class ExamplesConfig:
    """Settings of a dataset-examples pass.

    Attributes:
        k: images kept per channel (top and bottom).
        batch: images per forward pass.
        bottom: keep the bottom-k (most negative) images too. None: only for layers where some
            activation seen during the pass is negative (pre-activation layers such as a norm or
            a residual sum); never for the output of a ReLU/ReLU6, whose minimum is just 0.
        size: model input size; None for the model's own. Each image is made into the input by
            the model's preprocessing (``Model.prepare``: centre crop, resize).
        checkpoint_every: with a cache folder, save the running state every this many batches.
        progress: show a progress bar over images.
        weakest: the bottom-k are the images whose spatial maximum is lowest (the weakly
            activating images of an interpretability task, ties broken at random) instead of
            the most negative activations; implies ``bottom``.
        workers: processes that decode and resize images while the model runs (a DataLoader);
            None: ``loading.default_workers`` (none for a few batches, else up to 4). Results
            do not depend on it.
    """

    k: int = 9
    batch: int = 16
    bottom: bool | None = None
    size: int | None = None
    checkpoint_every: int = 8
    progress: bool = True
    workers: int | None = None
    weakest: bool = False

    def pass_config(self) -> PassConfig:
        """How the pass runs (batch, decoding workers, checkpoints, progress bar)."""
        return PassConfig(batch=self.batch, workers=self.workers, checkpoint_every=self.checkpoint_every,
                          progress=self.progress)


@dataclass(frozen=True)
class Example:
    """One dataset example of a unit: the source item, the activation there and where it peaked.

    ``y, x`` index the layer's grid; ``box = (top, left, bottom, right)`` is the unit's receptive
    field around that position in model-input pixels (bottom and right exclusive), clipped to the
    input of size ``input_size``.
    """

    key: str
    value: float
    y: int
    x: int
    box: tuple[int, int, int, int]
    input_size: tuple[int, int] | None = None


@dataclass
class LayerExamples:
    """The dataset examples of every channel of one layer.

    Arrays have one row per channel, best first along ``k``: ``top_values`` (C, k) float32,
    ``top_index`` (C, k) int indices into ``keys``, ``top_pos`` (C, k, 2) int (y, x) in the layer's
    ``grid``; the same for the bottom (None when not kept). ``max_value`` is the dataset maximum
    per channel. ``field_size``/``field_stride``/``field_offset`` describe the receptive field
    (None for layers without spatial extent, whose field is the whole input).
    """

    layer: str
    channels: int
    keys: list[str]
    top_values: np.ndarray
    top_index: np.ndarray
    top_pos: np.ndarray
    bottom_values: np.ndarray | None
    bottom_index: np.ndarray | None
    bottom_pos: np.ndarray | None
    max_value: np.ndarray
    grid: tuple[int, int]
    input_size: tuple[int, int]
    field_size: tuple[int, int] | None = None
    field_stride: tuple[float, float] | None = None
    field_offset: tuple[float, float] | None = None
    images: int = 0
    """How many images the pass saw."""
    min_value: float = 0.0
    """The smallest activation seen at any unit of the layer."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason) of the source items the pass could not read."""

    def top(self, channel: int) -> list[Example]:
        """The top-k examples of a channel, highest activation first."""
        return self._examples(channel, self.top_values, self.top_index, self.top_pos)

    def bottom(self, channel: int) -> list[Example]:
        """The bottom-k examples of a channel, most negative first."""
        if self.bottom_values is None:
            raise NeuronscopeError(
                f"no bottom-k examples for layer '{self.layer}': its activations are never negative; "
                "ask for them with ExamplesConfig(bottom=True)"
            )
        return self._examples(channel, self.bottom_values, self.bottom_index, self.bottom_pos)

    def box(self, y: int, x: int, extent: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of the receptive field of grid position (y, x), clipped; with
        ``extent`` (h, w), a field of that size on the same centre (e.g. ``effective_extent``)."""
        height, width = self.input_size
        if self.field_size is None:
            return (0, 0, height, width)
        extent = extent or self.field_size
        top, bottom = field_span(y, extent[0], self.field_stride[0], self.field_offset[0], height)
        left, right = field_span(x, extent[1], self.field_stride[1], self.field_offset[1], width)
        return (top, left, bottom, right)

    def _examples(self, channel: int, values, index, pos) -> list[Example]:
        if not 0 <= channel < self.channels:
            raise NeuronscopeError(f"channel {channel} out of range: layer '{self.layer}' has {self.channels} channels (0-{self.channels - 1})")
        return [
            Example(self.keys[int(i)], float(v), int(p[0]), int(p[1]), self.box(int(p[0]), int(p[1])), self.input_size)
            for v, i, p in zip(values[channel], index[channel], pos[channel])
        ]
