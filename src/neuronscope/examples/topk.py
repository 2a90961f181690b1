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

import hashlib
import io
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..capture import capture
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..images import file_safe
from ..manifest import atomic_write_bytes, build_manifest, stable_hash, write_json
from ..models.model import Model
from .receptive import field_geometry, field_span

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
    """

    k: int = 9
    batch: int = 16
    bottom: bool | None = None
    size: int | None = None
    checkpoint_every: int = 8
    progress: bool = True


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


def dataset_examples(model: Model, layers: list[str] | str, source: ImageSource, config: ExamplesConfig = ExamplesConfig(),
                     cache_dir: Path | None = None) -> dict[str, LayerExamples]:
    """The top-k (and bottom-k) images of ``source`` for every channel of ``layers``, by the
    channel's spatial maximum (minimum) on each image, in one pass over the source.

    With ``cache_dir``, layers already computed for this model, source and settings are loaded
    without running the model, the others are computed in one pass and saved as
    ``<cache_dir>/<model>/<source fingerprint>/<settings>/<layer>.npz`` (+ ``.json`` manifest),
    and the pass writes a checkpoint every ``config.checkpoint_every`` batches from which an
    interrupted pass resumes. ``config.batch`` and ``config.progress`` do not change the results.
    """
    _check_config(config)
    names = list(dict.fromkeys([layers] if isinstance(layers, str) else layers))
    if not names:
        raise NeuronscopeError("dataset_examples needs at least one layer")
    for name in names:
        model.layer(name)
    input_size = model.input_size if config.size is None else (int(config.size), int(config.size))
    store = _Store(cache_dir, model, source, config, input_size) if cache_dir is not None else None
    found = {name: store.load(name) for name in names} if store is not None else {}
    found = {name: result for name, result in found.items() if result is not None}
    todo = [name for name in names if name not in found]
    if todo:
        found.update(_run_pass(model, todo, source, config, input_size, store))
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


class _Running:
    """Streaming top-k and bottom-k of one layer: merge each batch, keep the best k."""

    def __init__(self, channels: int, k: int) -> None:
        self.top_values = torch.full((channels, k), -torch.inf)
        self.top_index = torch.full((channels, k), -1, dtype=torch.long)
        self.top_flat = torch.zeros((channels, k), dtype=torch.long)
        self.bottom_values = torch.full((channels, k), torch.inf)
        self.bottom_index = torch.full((channels, k), -1, dtype=torch.long)
        self.bottom_flat = torch.zeros((channels, k), dtype=torch.long)
        self.minimum = torch.inf
        self.grid = (0, 0)

    def add(self, activations: torch.Tensor, positions: torch.Tensor) -> None:
        flat = activations.detach().float().cpu()
        self.grid = tuple(flat.shape[2:]) if flat.dim() == 4 else (1, 1)
        flat = flat.flatten(2) if flat.dim() == 4 else flat.unsqueeze(-1)
        high, high_at = flat.max(dim=2)
        low, low_at = flat.min(dim=2)
        self.minimum = min(self.minimum, float(low.min()))
        index = positions.expand(flat.shape[1], -1)
        self.top_values, self.top_index, self.top_flat = _merge(
            (self.top_values, high.T), (self.top_index, index), (self.top_flat, high_at.T), descending=True)
        self.bottom_values, self.bottom_index, self.bottom_flat = _merge(
            (self.bottom_values, low.T), (self.bottom_index, index), (self.bottom_flat, low_at.T), descending=False)

    def referenced(self) -> torch.Tensor:
        return torch.cat([self.top_index.flatten(), self.bottom_index.flatten()])


def _merge(values, index, flat, descending: bool):
    """Concatenate kept and new candidates and keep the best k. The sort is stable and the kept
    ones come first, so exact ties go to the earlier image whatever the batching."""
    k = values[0].shape[1]
    all_values, all_index, all_flat = (torch.cat(pair, dim=1) for pair in (values, index, flat))
    order = torch.sort(all_values, dim=1, descending=descending, stable=True).indices[:, :k]
    return all_values.gather(1, order), all_index.gather(1, order), all_flat.gather(1, order)


class _PassState:
    """Everything an interrupted pass needs to go on: per-layer running results, the next source
    position, and the keys of the items the results refer to."""

    def __init__(self, layers: list[str], channels: list[int], k: int) -> None:
        self.layers = layers
        self.running = {name: _Running(c, k) for name, c in zip(layers, channels)}
        self.next = 0
        self.batches = 0
        self.images = 0
        self.keys: dict[int, str] = {}
        self.skipped: list[tuple[str, str]] = []
        self._capacity = sum(2 * c * k for c in channels)

    def add(self, activations: dict[str, torch.Tensor], batch: list[tuple[int, str]], next_position: int) -> None:
        positions = torch.tensor([p for p, _ in batch], dtype=torch.long)[None]
        for name in self.layers:
            self.running[name].add(activations[name], positions)
        self.keys.update(batch)
        self.next, self.batches, self.images = next_position, self.batches + 1, self.images + len(batch)
        if len(self.keys) > 2 * self._capacity:
            self._forget_unreferenced()

    def _forget_unreferenced(self) -> None:
        used = set(torch.cat([r.referenced() for r in self.running.values()]).tolist())
        self.keys = {p: key for p, key in self.keys.items() if p in used}

    def finish(self, name: str, input_size: tuple[int, int], field) -> LayerExamples:
        run = self.running[name]
        n = min(self.images, run.top_values.shape[1])
        top_index, bottom_index = run.top_index[:, :n], run.bottom_index[:, :n]
        top_index, bottom_index = top_index.contiguous(), bottom_index.contiguous()
        used = torch.unique(torch.cat([top_index.flatten(), bottom_index.flatten()]))  # sorted
        width = run.grid[1]

        def pos(flat: torch.Tensor) -> np.ndarray:
            return np.stack([(flat // width).numpy(), (flat % width).numpy()], axis=-1).astype(np.int64)

        extent, stride, offset = field if field is not None else (None, None, None)
        return LayerExamples(
            layer=name, channels=run.top_values.shape[0], keys=[self.keys[int(p)] for p in used],
            top_values=run.top_values[:, :n].numpy().astype(np.float32),
            top_index=torch.searchsorted(used, top_index).numpy(), top_pos=pos(run.top_flat[:, :n]),
            bottom_values=run.bottom_values[:, :n].numpy().astype(np.float32),
            bottom_index=torch.searchsorted(used, bottom_index).numpy(), bottom_pos=pos(run.bottom_flat[:, :n]),
            max_value=run.top_values[:, 0].numpy().astype(np.float32), grid=run.grid, input_size=input_size,
            field_size=extent, field_stride=stride, field_offset=offset, images=self.images, min_value=run.minimum,
        )


def _run_pass(model: Model, layers: list[str], source: ImageSource, config: ExamplesConfig,
              input_size: tuple[int, int], store: _Store | None) -> dict[str, LayerExamples]:
    channels = [model.layer(name).channels for name in layers]
    state = store.resume(layers) if store is not None else None
    if state is None:
        state = _PassState(layers, channels, config.k)
    if state.next > 0:
        source.skipped = list(state.skipped)
    bar = tqdm(total=len(source), initial=state.next, desc=f"examples {model.name}"[:60], unit="image",
               disable=not config.progress, leave=False)
    try:
        with torch.no_grad(), capture(model, layers) as cap:
            batch: list[tuple[int, str]] = []
            inputs: list[torch.Tensor] = []
            for position, key, image in source.items(start=state.next):
                batch.append((position, key))
                inputs.append(model.prepare(image, input_size))
                if len(batch) == config.batch:
                    state.add(cap(torch.cat(inputs)), batch, position + 1)
                    bar.update(state.next - bar.n)
                    batch, inputs = [], []
                    state.skipped = list(source.skipped)
                    if store is not None and state.batches % config.checkpoint_every == 0:
                        store.checkpoint(state)
            if batch:
                state.add(cap(torch.cat(inputs)), batch, batch[-1][0] + 1)
            state.skipped = list(source.skipped)
            bar.update(len(source) - bar.n)
    finally:
        bar.close()
    if state.images == 0:
        raise NeuronscopeError(f"no readable image in {source.name}")
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
    if config.size is not None and config.size < 8:
        raise NeuronscopeError(f"ExamplesConfig.size must be at least 8 pixels (or None), got {config.size}")


# --- the cache --------------------------------------------------------------------------------


class _Store:
    """Cached results and checkpoints of one model, source and settings, in one folder."""

    def __init__(self, cache_dir: Path, model: Model, source: ImageSource, config: ExamplesConfig,
                 input_size: tuple[int, int]) -> None:
        self.model, self.source, self.config = model, source, config
        self.settings = {"format": FORMAT, "k": config.k, "input_size": list(input_size),
                         "crop_fraction": model.crop_fraction, "weights": _weights_digest(model)}
        digest = stable_hash(self.settings)
        self.folder = Path(cache_dir) / file_safe(model.name) / source.fingerprint() / digest

    def load(self, layer: str) -> LayerExamples | None:
        data_path, manifest_path = self._paths(layer)
        if not (data_path.is_file() and manifest_path.is_file()):
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("settings") != self.settings or manifest.get("layer") != layer:
                return None
            with np.load(data_path, allow_pickle=False) as data:
                return _from_arrays(dict(data))
        except (OSError, ValueError, KeyError):
            return None  # an unreadable entry is a miss: it is recomputed and overwritten

    def save(self, result: LayerExamples, skipped: list[tuple[str, str]]) -> None:
        data_path, manifest_path = self._paths(result.layer)
        atomic_write_bytes(data_path, _npz(_to_arrays(result)))
        write_json(manifest_path, build_manifest(
            "dataset-examples", model=self.model.name, layer=result.layer, settings=self.settings,
            source={"name": self.source.name, "fingerprint": self.source.fingerprint(), "items": len(self.source),
                    "skipped": [{"key": k, "reason": r} for k, r in skipped]},
            config=asdict(self.config), images=result.images, channels=result.channels,
        ))

    def checkpoint(self, state: _PassState) -> None:
        arrays = {"next": np.array(state.next), "batches": np.array(state.batches), "images": np.array(state.images),
                  "positions": np.array(list(state.keys), dtype=np.int64), "keys": np.array(list(state.keys.values()), dtype=str),
                  "skipped": np.array(state.skipped, dtype=str).reshape(-1, 2)}
        for i, name in enumerate(state.layers):
            run = state.running[name]
            for field in ("top_values", "top_index", "top_flat", "bottom_values", "bottom_index", "bottom_flat"):
                arrays[f"{i}.{field}"] = getattr(run, field).numpy()
            arrays[f"{i}.minimum"] = np.array(run.minimum)
            arrays[f"{i}.grid"] = np.array(run.grid)
        atomic_write_bytes(self._checkpoint_path(state.layers), _npz(arrays))

    def resume(self, layers: list[str]) -> _PassState | None:
        path = self._checkpoint_path(layers)
        if not path.is_file():
            return None
        channels = [self.model.layer(name).channels for name in layers]
        state = _PassState(layers, channels, self.config.k)
        try:
            with np.load(path, allow_pickle=False) as data:
                state.next, state.batches, state.images = int(data["next"]), int(data["batches"]), int(data["images"])
                state.keys = dict(zip(data["positions"].tolist(), data["keys"].tolist()))
                state.skipped = [tuple(pair) for pair in data["skipped"].tolist()]
                for i, name in enumerate(layers):
                    run = state.running[name]
                    for field in ("top_values", "top_index", "top_flat", "bottom_values", "bottom_index", "bottom_flat"):
                        setattr(run, field, torch.from_numpy(data[f"{i}.{field}"]))
                    run.minimum = float(data[f"{i}.minimum"])
                    run.grid = tuple(int(v) for v in data[f"{i}.grid"])
        except (OSError, ValueError, KeyError):
            return None  # a damaged checkpoint: start over
        return state

    def forget_checkpoint(self, layers: list[str]) -> None:
        self._checkpoint_path(layers).unlink(missing_ok=True)

    def _checkpoint_path(self, layers: list[str]) -> Path:
        return self.folder / f"checkpoint-{stable_hash([layers, self.config.batch])}.npz"

    def _paths(self, layer: str) -> tuple[Path, Path]:
        stem = file_safe(layer, limit=200)
        return self.folder / f"{stem}.npz", self.folder / f"{stem}.json"


_ARRAY_FIELDS = ("top_values", "top_index", "top_pos", "bottom_values", "bottom_index", "bottom_pos", "max_value")


def _to_arrays(result: LayerExamples) -> dict[str, np.ndarray]:
    arrays = {name: getattr(result, name) for name in _ARRAY_FIELDS}
    arrays["keys"] = np.array(result.keys, dtype=str)
    meta = {"layer": result.layer, "channels": result.channels, "grid": list(result.grid),
            "input_size": list(result.input_size), "images": result.images, "min_value": result.min_value,
            "field_size": result.field_size, "field_stride": result.field_stride, "field_offset": result.field_offset}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def _from_arrays(arrays: dict[str, np.ndarray]) -> LayerExamples:
    meta = json.loads(str(arrays["meta"]))
    return LayerExamples(
        layer=meta["layer"], channels=meta["channels"], keys=[str(k) for k in arrays["keys"]],
        **{name: arrays[name] for name in _ARRAY_FIELDS}, grid=_pair(meta["grid"], int),
        input_size=_pair(meta["input_size"], int), field_size=_pair(meta["field_size"], int),
        field_stride=_pair(meta["field_stride"], float), field_offset=_pair(meta["field_offset"], float),
        images=meta["images"], min_value=meta["min_value"],
    )


def _pair(value, kind):
    return tuple(kind(v) for v in value) if value is not None else None


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _weights_digest(model: Model) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes() if tensor.dtype != torch.bfloat16
                      else tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]

