"""The build manifest of one model's gallery: what is done, with what, in which run.

``<out>/<model>/manifest.json`` is rewritten atomically after every finished piece of work
(a chunk of units, a layer's weights, a photo page), and only after that piece's files are on
disk, so a killed build loses at most the piece in progress and never records a missing file.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NeuronscopeError
from ..manifest import build_manifest, to_jsonable, write_json

if TYPE_CHECKING:
    from ..models.model import Model

MANIFEST = "manifest.json"
LOCK = ".lock"


class BuildState:
    """The manifest of ``<out>/<model>``, loaded or started fresh, with one id for this run."""

    def __init__(self, model: Model | str, pinned: dict[str, Any], folder: Path) -> None:
        self.folder = folder
        self.path = folder / MANIFEST
        self.run = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self._lock()
        _remove_partial_files(folder)
        self.data = self._load(model, to_jsonable(pinned))
        self.data["runs"].append({"id": self.run, "started": _now(), "finished": None})

    def _load(self, model: Model | str, pinned: dict[str, Any]) -> dict[str, Any]:
        if not self.path.exists():
            return {**build_manifest("gallery", model=model, settings=pinned),
                    "runs": [], "layers": {}, "units": {}, "photos": {}}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise NeuronscopeError(f"cannot read the gallery manifest {self.path}: {error}") from None
        changed = sorted(k for k in pinned.keys() | data.get("settings", {}).keys()
                         if pinned.get(k) != data.get("settings", {}).get(k))
        if changed:
            was = {k: data["settings"].get(k) for k in changed}
            raise NeuronscopeError(
                f"the gallery in {self.folder} was built with other settings ({', '.join(changed)}: {was}); "
                "build into another --out folder, or delete this one to start over")
        return data

    # --- units --------------------------------------------------------------------------

    def unit_done(self, layer: str, channel: int) -> bool:
        return f"{layer}:{channel}" in self.data["units"]

    def record_units(self, records: dict[tuple[str, int], dict[str, Any]]) -> None:
        for (layer, channel), record in records.items():
            self.data["units"][f"{layer}:{channel}"] = {**to_jsonable(record), "run": self.run}
        self.save()

    # --- layers and photos ----------------------------------------------------------------

    def layer(self, layer: str) -> dict[str, Any]:
        return self.data["layers"].setdefault(layer, {})

    def record_layer(self, layer: str, key: str, value: Any) -> None:
        self.layer(layer)[key] = to_jsonable(value)
        self.save()

    def photo(self, name: str) -> dict[str, Any] | None:
        return self.data["photos"].get(name)

    def record_photo(self, name: str, record: dict[str, Any]) -> None:
        self.data["photos"][name] = {**to_jsonable(record), "run": self.run}
        self.save()

    # --- the run ----------------------------------------------------------------------------

    def finish(self, summary: dict[str, Any]) -> None:
        self.data["runs"][-1].update(finished=_now(), **to_jsonable(summary))
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)

    def release(self) -> None:
        """Give up the folder's lock (the build is over, finished or not)."""
        (self.folder / LOCK).unlink(missing_ok=True)

    def _lock(self) -> None:
        """One build per folder: a second one would interleave manifests."""
        lock = self.folder / LOCK
        if lock.exists():
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise NeuronscopeError(f"another build (process {pid}) is writing {self.folder}; wait for it or stop it")
        self.folder.mkdir(parents=True, exist_ok=True)
        lock.write_text(str(os.getpid()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_partial_files(folder: Path) -> int:
    """Delete temporary files a killed build left behind (finished files are renamed from them)."""
    stale = list(folder.rglob(".*.tmp")) if folder.exists() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
