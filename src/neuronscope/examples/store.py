"""The dataset-examples cache: results and checkpoints per model, source and settings, written atomically."""
from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..data.sources import ImageSource
from ..images import file_safe
from ..manifest import atomic_write_bytes, build_manifest, stable_hash, write_json
from ..models.digest import weights_digest
from ..models.model import Model
from .results import FORMAT, ExamplesConfig, LayerExamples
from .running import _PassState


class Store:
    """Cached results and checkpoints of one model, source and settings, in one folder."""

    def __init__(self, cache_dir: Path, model: Model, source: ImageSource, config: ExamplesConfig,
                 input_size: tuple[int, int]) -> None:
        self.model, self.source, self.config = model, source, config
        self.settings = {"format": FORMAT, "k": config.k, "input_size": list(input_size),
                         "crop_fraction": model.crop_fraction, "weights": weights_digest(model)}
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
