"""Sources for real datasets: a PyTorch ``Dataset`` and WebDataset-style tar shards.

    source = dataset_source(my_dataset)                 # items: image, or (image, label)
    source = tar_shards_source("shards/train-*.tar")    # members <key>.jpg (+ <key>.cls)

Both stream one item at a time like every ``ImageSource``, skip unreadable items (listed by the
iteration or pass that met them) and give labels where the data has them (``source.label(key)``). An ImageFolder
layout (one sub-folder per class) is a ``folder_source``, which reads labels from the folders.
"""
from __future__ import annotations

import glob
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NeuronscopeError
from ..manifest import stable_hash
from .photos import as_rgb_array, decode_image
from .sources import IMAGE_SUFFIXES, ImageSource

LABEL_SUFFIXES = (".cls", ".label")
"""Tar members that hold a sample's label as text (WebDataset's convention is ``.cls``)."""


def dataset_source(dataset: Any, name: str | None = None, fingerprint: str | None = None) -> ImageSource:
    """A ``torch.utils.data.Dataset`` (anything with ``__len__`` and ``__getitem__``) as a source.

    An item is an image (PIL image, (H, W, 3) array or (3, H, W) tensor in [0, 1] or uint8) or a
    tuple whose first element is one and whose second is the label (an int is looked up in
    ``dataset.classes`` when it has them). Keys are the item indices as text. The fingerprint,
    which keys cached results, comes from the type, length and first items; pass ``fingerprint``
    when the dataset can change without those changing. An item that raises is skipped."""
    return DatasetSource(dataset, name, fingerprint)


def tar_shards_source(shards: str | Path | Sequence[str | Path]) -> ImageSource:
    """Uncompressed tar shards in WebDataset's layout: files sharing a basename up to the first
    dot form a sample (``n0144/img_17.jpg`` + ``n0144/img_17.cls``); its image is the first
    .jpg/.jpeg/.png/.webp member and its label the text of a .cls or .label member.

    ``shards``: a .tar file, a folder of them, a glob pattern (``"train-*.tar"``) or a list.
    Only the tar headers are read up front; images are read by offset one at a time."""
    return TarShardSource(shards)


class DatasetSource(ImageSource):
    """A PyTorch-style dataset; see ``dataset_source``."""

    def __init__(self, dataset: Any, name: str | None, fingerprint: str | None) -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise NeuronscopeError(f"dataset_source needs a map-style dataset (__len__ and __getitem__), "
                                   f"got {type(dataset).__name__}")
        self.dataset = dataset
        self._keys = [str(i) for i in range(len(dataset))]
        if not self._keys:
            raise NeuronscopeError(f"the dataset {type(dataset).__name__} is empty")
        self._classes = list(getattr(dataset, "classes", []) or [])
        self._given = fingerprint
        self._last: tuple[str, np.ndarray, str | None] | None = None
        self.name = name or f"dataset {type(dataset).__name__} ({len(self._keys)} items)"

    def keys(self) -> Sequence[str]:
        return self._keys

    def load(self, key: str) -> np.ndarray:
        return self._item(key)[0]

    def label(self, key: str) -> str | None:
        return self._item(key)[1]

    def fingerprint(self) -> str:
        if self._given is not None:
            return stable_hash(["dataset", self._given])
        heads = []
        for key in self._keys[:3]:
            try:
                heads.append(stable_hash(self.load(key).tobytes()))
            except NeuronscopeError:
                heads.append("unreadable")
        return stable_hash(["dataset", type(self.dataset).__qualname__, len(self._keys), heads])

    def _item(self, key: str) -> tuple[np.ndarray, str | None]:
        if self._last is not None and self._last[0] == key:
            return self._last[1], self._last[2]
        if key not in self._keys:  # keys are range(len): a cheap membership test via int
            raise NeuronscopeError(f"'{key}' is not an item of {self.name} (keys are 0-{len(self._keys) - 1})")
        try:
            item = self.dataset[int(key)]
        except Exception as error:  # noqa: BLE001 - the user's dataset: skip the item, say why
            raise NeuronscopeError(f"item {key} of {self.name} raised {type(error).__name__}: {error}") from None
        image, label = (item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) >= 2 else (item, None)
        array = as_rgb_array(image)
        self._last = (key, array, self._label_name(label))
        return array, self._last[2]

    def _label_name(self, label: Any) -> str | None:
        if label is None:
            return None
        if hasattr(label, "item") and getattr(label, "ndim", 1) == 0:
            label = label.item()
        if isinstance(label, (int, np.integer)) and 0 <= int(label) < len(self._classes):
            return str(self._classes[int(label)])
        return str(label)


@dataclass(frozen=True)
class _Sample:
    shard: int
    offset: int
    size: int
    member: str
    label: str | None


class TarShardSource(ImageSource):
    """WebDataset-style tar shards; see ``tar_shards_source``."""

    def __init__(self, shards: str | Path | Sequence[str | Path]) -> None:
        self.shards = _shard_paths(shards)
        self._samples: dict[str, _Sample] = {}
        for number, path in enumerate(self.shards):
            self._samples.update(_index_shard(number, path))
        if not self._samples:
            raise NeuronscopeError(f"no image members in {len(self.shards)} tar shard(s) (first: {self.shards[0]}); "
                                   f"looked for {', '.join(IMAGE_SUFFIXES)}")
        self._keys = list(self._samples)
        self.name = f"tar shards ({len(self.shards)} shards, {len(self._keys)} images)"

    def keys(self) -> Sequence[str]:
        return self._keys

    def load(self, key: str) -> np.ndarray:
        sample = self._sample(key)
        try:
            with open(self.shards[sample.shard], "rb") as file:
                file.seek(sample.offset)
                data = file.read(sample.size)
        except OSError as error:
            raise NeuronscopeError(f"cannot read {key} from {self.shards[sample.shard]}: {error}") from None
        return decode_image(data, f"{self.shards[sample.shard].name}:{sample.member}")

    def label(self, key: str) -> str | None:
        return self._sample(key).label

    def fingerprint(self) -> str:
        stats = []
        for path in self.shards:
            stat = path.stat()
            stats.append((path.name, stat.st_size, stat.st_mtime_ns))
        return stable_hash(["tar", stats])

    def _sample(self, key: str) -> _Sample:
        if key not in self._samples:
            raise NeuronscopeError(f"'{key}' is not an item of {self.name}")
        return self._samples[key]


def is_tar_spec(spec: str | Path) -> bool:
    """Whether a command-line source names tar shards: a .tar file, a glob of them, or a folder
    holding .tar files and no images."""
    text = str(spec)
    if text.endswith(".tar") and any(ch in text for ch in "*?["):
        return True
    path = Path(text).expanduser()
    if path.is_file():
        return path.suffix.lower() == ".tar"
    if path.is_dir():
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
        return any(p.suffix.lower() == ".tar" for p in entries) and not any(
            p.suffix.lower() in IMAGE_SUFFIXES or p.is_dir() for p in entries)
    return False


def _shard_paths(shards: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(shards, (str, Path)):
        path = Path(shards).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.glob("*.tar") if not p.name.startswith("."))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(path)))
        if not found:
            raise NeuronscopeError(f"no tar shards at '{shards}': give a .tar file, a folder of .tar files or a glob pattern")
    else:
        found = [Path(p).expanduser() for p in shards]
        missing = [str(p) for p in found if not p.is_file()]
        if missing or not found:
            raise NeuronscopeError(f"tar shards not found: {', '.join(missing[:3]) or 'the list is empty'}")
    for path in found:
        if path.name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
            raise NeuronscopeError(f"'{path}' is compressed: shards must be plain .tar files (read by offset); "
                                   "images inside are already compressed")
    return found


def _index_shard(number: int, path: Path) -> dict[str, _Sample]:
    """Sample key -> where its image lies, from the tar headers alone."""
    images: dict[str, tarfile.TarInfo] = {}
    labels: dict[str, tarfile.TarInfo] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, _, file = member.name.rpartition("/")
                stem, dot, rest = file.partition(".")
                if not dot or stem == "":
                    continue
                key = f"{folder}/{stem}" if folder else stem
                suffix = "." + rest.rsplit(".", 1)[-1].lower()
                if suffix in IMAGE_SUFFIXES and key not in images:
                    images[key] = member
                elif suffix in LABEL_SUFFIXES:
                    labels[key] = member
            found = {}
            for key, member in images.items():
                label = None
                if key in labels:
                    extracted = tar.extractfile(labels[key])
                    label = extracted.read().decode("utf-8", "replace").strip() if extracted else None
                found[f"{path.stem}/{key}"] = _Sample(number, member.offset_data, member.size, member.name, label or None)
            return found
    except (tarfile.TarError, OSError) as error:
        raise NeuronscopeError(f"cannot read tar shard '{path}' ({type(error).__name__}: {error})") from None
