"""The dataset-examples cache: results and checkpoints per model, source and settings, written atomically."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..data.sources import ImageSource
from ..images import file_safe
from ..manifest import build_manifest, stable_hash, write_json, write_npz
from ..models.digest import weights_digest
from ..models.model import Model
from .results import FORMAT, ExamplesConfig, LayerExamples


class Store:
    """Cached results and checkpoints of one model, source and settings, in one folder."""

    def __init__(self, model: Model, source: ImageSource, config: ExamplesConfig, input_size: tuple[int, int],
                 cache_dir: Path) -> None:
        self.model, self.source, self.config = model, source, config
        self.settings = {"format": FORMAT, "k": config.k, "input_size": list(input_size),
                         "crop_fraction": model.crop_fraction, "weights": weights_digest(model)}
        if config.weakest:  # another ranking of the bottom-k
            self.settings["weakest"] = True
        if model.variant:  # derived layers (dictionary features) of the same name but another dictionary
            self.settings["variant"] = model.variant
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

    def save(self, result: LayerExamples) -> None:
        data_path, manifest_path = self._paths(result.layer)
        write_npz(data_path, _to_arrays(result))
        write_json(manifest_path, build_manifest(
            "dataset-examples", model=self.model.name, layer=result.layer, settings=self.settings,
            source={"name": self.source.name, "fingerprint": self.source.fingerprint(), "items": len(self.source),
                    "skipped": [{"key": k, "reason": r} for k, r in result.skipped]},
            config=asdict(self.config), images=result.images, channels=result.channels,
        ))

    def checkpoint_path(self, layers: list[str], batch: int) -> Path:
        """Where a pass computing ``layers`` saves its running state (``stream``'s checkpoint)."""
        return self.folder / f"checkpoint-{stable_hash([layers, batch])}.npz"

    def _paths(self, layer: str) -> tuple[Path, Path]:
        stem = file_safe(layer, limit=200)
        return self.folder / f"{stem}.npz", self.folder / f"{stem}.json"


_ARRAY_FIELDS = ("top_values", "top_index", "top_pos", "bottom_values", "bottom_index", "bottom_pos", "max_value")


def _to_arrays(result: LayerExamples) -> dict[str, np.ndarray]:
    arrays = {name: getattr(result, name) for name in _ARRAY_FIELDS}
    arrays["keys"] = np.array(result.keys, dtype=str)
    meta = {"layer": result.layer, "channels": result.channels, "grid": list(result.grid),
            "input_size": list(result.input_size), "images": result.images, "min_value": result.min_value,
            "field_size": result.field_size, "field_stride": result.field_stride, "field_offset": result.field_offset,
            "skipped": [list(pair) for pair in result.skipped]}
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
        skipped=[tuple(pair) for pair in meta.get("skipped", [])],  # caches written before it kept none
    )


def _pair(value, kind):
    return tuple(kind(v) for v in value) if value is not None else None


