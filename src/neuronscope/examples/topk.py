"""Dataset examples: for every channel of some layers, the images of a source that excite it most.

    found = dataset_examples(model, bundled_source(), ["blocks.2.0", "blocks.4.1"], cache_dir=Path("cache"))
    for example in found["blocks.2.0"].top(7):
        crop = example_crop(model, source, example)     # what the unit saw, around its maximum

One pass over the source runs the model once per batch, up to the deepest requested layer, and
keeps a streaming top-k (and bottom-k) per channel of the spatial maximum (minimum), so memory
does not depend on the size of the source. With a cache folder the results are stored per
model / source / settings / layer, and the running state is checkpointed so an interrupted pass
resumes where it stopped. The pass is ``stream.stream`` with a ``TopExamples`` accumulator, so
the examples can share one pass with other consumers (``ExamplesPass``).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..models.model import Model
from ..stream import Runner, stream
from .receptive import field_geometry
from .results import Example, ExamplesConfig, LayerExamples
from .running import TopExamples
from .store import Store


def dataset_examples(model: Model, source: ImageSource, layers: list[str] | str, config: ExamplesConfig = ExamplesConfig(),
                     cache_dir: Path | None = None, runner: Runner | None = None) -> dict[str, LayerExamples]:
    """The top-k (and bottom-k) images of ``source`` for every channel of ``layers``, by the
    channel's spatial maximum (minimum) on each image, in one pass over the source.

    With ``cache_dir``, layers already computed for this model, source and settings are loaded
    without running the model, the others are computed in one pass and saved as
    ``<cache_dir>/<model>/<source fingerprint>/<settings>/<layer>.npz`` (+ ``.json`` manifest),
    and the pass writes a checkpoint every ``config.checkpoint_every`` batches from which an
    interrupted pass resumes. ``config.batch``, ``config.workers``, ``config.progress`` and
    ``runner`` (another engine, e.g. Ray) do not change the results. To collect examples in a pass
    that also feeds other accumulators, use ``ExamplesPass``.
    """
    found = ExamplesPass(model, source, layers, config, cache_dir)
    if found.accumulator is not None:
        result = stream(source, [found.accumulator], config.pass_config(), checkpoint=found.checkpoint, runner=runner,
                        what=f"examples {model.name}")
        found.finish(result)
        result.forget_checkpoint()
    return found.results


class ExamplesPass:
    """Dataset examples as one consumer of a shared pass: what the cache already holds, and the
    accumulator for the rest (None when everything is cached).

        examples = ExamplesPass(model, source, layers, config, cache_dir)
        result = stream(source, [a for a in (examples.accumulator, ...) if a is not None])
        examples.finish(result); examples.results["blocks.4.2"]
    """

    def __init__(self, model: Model, source: ImageSource, layers: list[str] | str,
                 config: ExamplesConfig = ExamplesConfig(), cache_dir: Path | None = None) -> None:
        _check_config(config)
        self.model, self.source, self.config = model, source, config
        self.layers = list(dict.fromkeys([layers] if isinstance(layers, str) else layers))
        if not self.layers:
            raise NeuronscopeError("dataset examples need at least one layer")
        for name in self.layers:
            model.layer(name)
        self.input_size = model.input_size if config.size is None else (int(config.size), int(config.size))
        self.store = Store(model, source, config, self.input_size, cache_dir) if cache_dir is not None else None
        loaded = {name: self.store.load(name) for name in self.layers} if self.store is not None else {}
        self._found = {name: result for name, result in loaded.items() if result is not None}
        todo = [name for name in self.layers if name not in self._found]
        self.accumulator = (TopExamples(model, todo, config.k, self.input_size, config.weakest)
                            if todo else None)
        self.checkpoint = self.store.checkpoint_path(todo, config.batch) if self.store is not None and todo else None

    def finish(self, result) -> None:
        """Take the accumulator's results once its pass (``result``: the ``PassResult``) is done,
        and save them in the cache."""
        if self.accumulator is not None:
            for name in self.accumulator.layers:
                found = replace(self.accumulator.finish(name, field_geometry(self.model, name, self.input_size)),
                                skipped=list(result.skipped))
                if self.store is not None:
                    self.store.save(found)
                self._found[name] = found
            self.accumulator = None

    @property
    def results(self) -> dict[str, LayerExamples]:
        missing = [name for name in self.layers if name not in self._found]
        if missing:
            raise NeuronscopeError(f"the examples of {missing} are not computed yet: run their pass first")
        return {name: _choose_bottom(self._found[name], self.config.bottom, self.config.weakest) for name in self.layers}


def example_image(model: Model, source: ImageSource, key: str, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """A source item as the model saw it: its preprocessed input, float32 (H, W, 3) in [0, 1]."""
    x = model.prepare(source.load(key), size)
    return x[0].detach().permute(1, 2, 0).float().cpu().numpy()


def example_crop(model: Model, source: ImageSource, example: Example, size: int = 96,
                 box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The part of the model's input an example's unit sees (``example.box``, or ``box``), scaled
    to fit a ``size`` x ``size`` square (aspect kept, white margin): float32 (size, size, 3) in [0, 1]."""
    return crop_box(example_image(model, source, example.key, example.input_size), box or example.box, size)


def crop_box(image: np.ndarray, box: tuple[int, int, int, int], size: int = 96) -> np.ndarray:
    """``image[top:bottom, left:right]`` of an (H, W, 3) array scaled to fit a ``size`` x ``size``
    square (aspect kept, white margin): float32 (size, size, 3) in [0, 1]."""
    top, left, bottom, right = box
    crop = torch.from_numpy(np.ascontiguousarray(image[top:bottom, left:right])).permute(2, 0, 1)[None]
    height, width = crop.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    crop = F.interpolate(crop, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    canvas = torch.ones(3, size, size)
    y0, x0 = (size - new_h) // 2, (size - new_w) // 2
    canvas[:, y0 : y0 + new_h, x0 : x0 + new_w] = crop[0]
    return canvas.permute(1, 2, 0).numpy()


def _choose_bottom(result: LayerExamples, bottom: bool | None, weakest: bool = False) -> LayerExamples:
    keep = result.min_value < 0 if bottom is None else bottom
    keep = keep or weakest
    if keep or result.bottom_values is None:
        return result
    return replace(result, bottom_values=None, bottom_index=None, bottom_pos=None)


def _check_config(config: ExamplesConfig) -> None:
    for field in ("k", "batch", "checkpoint_every"):
        if getattr(config, field) < 1:
            raise NeuronscopeError(f"ExamplesConfig.{field} must be at least 1, got {getattr(config, field)}")
    if config.workers is not None and config.workers < 0:
        raise NeuronscopeError(f"ExamplesConfig.workers must be 0 or more (or None for automatic), got {config.workers}")
    if config.size is not None and config.size < 8:
        raise NeuronscopeError(f"ExamplesConfig.size must be at least 8 pixels (or None), got {config.size}")
