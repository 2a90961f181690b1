"""Manifests: what is needed to reproduce an output, written beside it; atomic file writes."""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def environment() -> dict[str, str]:
    """Versions of everything that affects the numbers."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("neuronscope", "torch", "numpy", "pillow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, paths and numbers as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def stable_hash(value: Any, length: int = 16) -> str:
    """A short stable hash of a JSON-like value (keys sorted; other objects by ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def build_manifest(kind: str, **fields: Any) -> dict[str, Any]:
    """A manifest: the kind of output, the given fields, versions and a UTC timestamp.

    A `Model` given as ``model`` is recorded by name, with ``model_spec``: how to load it again
    (``ModelSpec.from_dict``; absent for a model built with ``wrap`` in Python)."""
    model = fields.get("model")
    if hasattr(model, "spec") and hasattr(model, "module"):
        fields.update(model_fields(model))
    return {"kind": kind, **to_jsonable(fields), "versions": environment(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def model_fields(model: Any) -> dict[str, Any]:
    """How a manifest names a `Model`: ``model`` (its name) and ``model_spec`` (how to load it again;
    absent for a model built with ``wrap`` in Python), and ``derived_layers`` (each derived
    layer's fingerprint, e.g. a dictionary's, and the file it was loaded from, or the ``recipe``
    that makes it again, e.g. random directions' seed) when it has any."""
    fields = {"model": model.name}
    if model.spec is not None:
        fields["model_spec"] = model.spec.to_dict()
    if getattr(model, "derived", None):
        fields["derived_layers"] = {name: {"fingerprint": layer.fingerprint, "file": layer.file,
                                           **(getattr(layer, "recipe", None) or {})}
                                    for name, layer in model.derived.items()}
    return fields


def derived_manifest(kind: str, parent: dict[str, Any], /, **fields: Any) -> dict[str, Any]:
    """A manifest for a result computed from another result alone (no model at hand): ``parent``'s
    ``model`` and ``model_spec`` (a manifest, or ``model_fields``), then ``fields`` as ``build_manifest``."""
    model = {key: parent[key] for key in ("model", "model_spec") if key in parent}
    return build_manifest(kind, **model, **fields)


def image_name(image: Any) -> str:
    """How a manifest names an input image: its name or path as given (a bundled photo, a file),
    else "an image given in Python" (an array or tensor)."""
    return str(image) if isinstance(image, (str, Path)) else "an image given in Python"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; outputs are meant to be shared and served
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_npz(path: str | Path, arrays: dict[str, Any], compressed: bool = False) -> Path:
    """Atomically write ``arrays`` (names -> array-likes) as a NumPy .npz file."""
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


def write_json(path: str | Path, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON."""
    return atomic_write_bytes(path, (json.dumps(to_jsonable(data), indent=2) + "\n").encode())
