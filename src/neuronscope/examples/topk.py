"""Dataset examples: for every channel of some layers, the images of a source that excite it most.

    found = dataset_examples(model, ["blocks.2.0", "blocks.4.1"], bundled_source(), cache_dir=Path("cache"))
    for example in found["blocks.2.0"].top(7):
        crop = example_crop(model, source, example)     # what the unit saw, around its maximum

One pass over the source runs the model once per batch, up to the deepest requested layer, and
keeps a streaming top-k (and bottom-k) per channel of the spatial maximum (minimum), so memory
does not depend on the size of the source. With a cache folder the results are stored per
model / source / settings / layer, and the running state is checkpointed so an interrupted pass
resumes where it stopped.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..capture import capture
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..models.model import Model
from .loading import Preparer, batches, default_workers
from .receptive import field_geometry
from .results import Example, ExamplesConfig, LayerExamples
from .running import BatchSummary, _PassState, summarize
from .store import Store

Runner = Callable[[Model, list[str], ImageSource, ExamplesConfig, tuple[int, int], int], Iterator[BatchSummary]]
"""How a pass is run: (model, layers, source, config, input size, start position) -> the batches'
summaries in source order (``local_summaries`` here; ``scale.ray_examples`` on Ray)."""


def dataset_examples(model: Model, layers: list[str] | str, source: ImageSource, config: ExamplesConfig = ExamplesConfig(),
                     cache_dir: Path | None = None, runner: Runner | None = None) -> dict[str, LayerExamples]:
    """The top-k (and bottom-k) images of ``source`` for every channel of ``layers``, by the
    channel's spatial maximum (minimum) on each image, in one pass over the source.

    With ``cache_dir``, layers already computed for this model, source and settings are loaded
    without running the model, the others are computed in one pass and saved as
    ``<cache_dir>/<model>/<source fingerprint>/<settings>/<layer>.npz`` (+ ``.json`` manifest),
    and the pass writes a checkpoint every ``config.checkpoint_every`` batches from which an
    interrupted pass resumes. ``config.batch``, ``config.workers``, ``config.progress`` and
    ``runner`` (another engine, e.g. Ray) do not change the results.
    """
    _check_config(config)
    names = list(dict.fromkeys([layers] if isinstance(layers, str) else layers))
    if not names:
        raise NeuronscopeError("dataset_examples needs at least one layer")
    for name in names:
        model.layer(name)
    input_size = model.input_size if config.size is None else (int(config.size), int(config.size))
    store = Store(cache_dir, model, source, config, input_size) if cache_dir is not None else None
    found = {name: store.load(name) for name in names} if store is not None else {}
    found = {name: result for name, result in found.items() if result is not None}
    todo = [name for name in names if name not in found]
    if todo:
        found.update(_run_pass(model, todo, source, config, input_size, store, runner))
    return {name: _choose_bottom(found[name], config.bottom) for name in names}


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


# --- the pass ---------------------------------------------------------------------------------


def local_summaries(model: Model, layers: list[str], source: ImageSource, config: ExamplesConfig,
                    input_size: tuple[int, int], start: int) -> Iterator[BatchSummary]:
    """The pass in this process: decode (in ``config.workers`` DataLoader processes), one capture
    of every layer, each batch summarized. Another engine gives the same summaries its own way."""
    workers = default_workers(source, config.batch) if config.workers is None else config.workers
    with torch.no_grad(), capture(model, layers) as cap:
        for batch in batches(source, Preparer.of(model, input_size), start, config.batch, workers):
            activations = cap(batch.inputs.to(model.device, model.dtype)) if batch.inputs is not None else {}
            yield summarize(activations, batch.items, config.k, batch.skipped, batch.next)


def _run_pass(model: Model, layers: list[str], source: ImageSource, config: ExamplesConfig,
              input_size: tuple[int, int], store: Store | None, runner: Runner | None) -> dict[str, LayerExamples]:
    channels = [model.layer(name).channels for name in layers]
    state = store.resume(layers) if store is not None else None
    if state is None:
        state = _PassState(layers, channels, config.k)
    runner = runner or local_summaries
    bar = tqdm(total=len(source), initial=state.next, desc=f"examples {model.name}"[:60], unit="image",
               disable=not config.progress, leave=False)
    try:
        for part in runner(model, layers, source, config, input_size, state.next):
            state.add(part)
            bar.update(state.next - bar.n)
            if store is not None and part.items and state.batches % config.checkpoint_every == 0:
                store.checkpoint(state)
    finally:
        bar.close()
        source.skipped = list(state.skipped)
    if state.images == 0:
        first = f" (first: {state.skipped[0][1]})" if state.skipped else ""
        raise NeuronscopeError(f"no readable image in {source.name}: all {len(state.skipped)} items failed to load{first}")
    results = {name: state.finish(name, input_size, field_geometry(model, name, input_size)) for name in layers}
    if store is not None:
        for result in results.values():
            store.save(result, state.skipped)
        store.forget_checkpoint(layers)
    return results


def _choose_bottom(result: LayerExamples, bottom: bool | None) -> LayerExamples:
    keep = result.min_value < 0 if bottom is None else bottom
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
