"""Image sources: sets of images streamed one at a time, each item named by a stable key.

    source = resolve_source(None)            # the bundled photos, cut into many crops
    source = folder_source("~/pictures")     # every jpg/png/webp below a folder
    for key, image in source: ...            # float32 (H, W, 3) in [0, 1], one image in memory
    items = source.items()                   # the same with positions; afterwards
    items.skipped                            # [(key, reason)] of the unreadable items

Unreadable files are skipped (and listed by the iteration that met them); they never stop a pass.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import NeuronscopeError, did_you_mean
from ..manifest import stable_hash
from .photos import (
    BUNDLED_LATTICE,
    EXTRA_IMAGES,
    crop_table,
    lattice_crop,
    load_image,
    photo,
    photo_names,
    photo_path,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
"""File types a folder source picks up (case-insensitive)."""

BUNDLED_VERSION = "bundled-crops-v1"
"""Changes whenever the bundled crop lattice changes, so cached results are not reused by mistake."""

class ImageSource:
    """A deterministic, streamed sequence of images, each named by a key.

    Subclasses give ``keys`` (every candidate item, cheap: nothing is decoded) and ``load``;
    iteration decodes one image at a time, so memory does not grow with the source.
    """

    name: str = "images"
    """A human description, e.g. "folder ~/pictures (120 files)"."""

    def keys(self) -> Sequence[str]:
        """Every candidate item, in iteration order."""
        raise NotImplementedError

    def load(self, key: str) -> np.ndarray:
        """One item as a float32 RGB array (H, W, 3) in [0, 1]; NeuronscopeError if unreadable."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short stable hash of what the source contains; changes when the contents change."""
        raise NotImplementedError

    def label(self, key: str) -> str | None:
        """The class an item belongs to, where the source has labels (an ImageFolder's
        sub-folder, a dataset's target); None otherwise."""
        return None

    def group(self, key: str) -> str:
        """Items that must stay together when a source is split (crops of one photo); by
        default each item is its own group."""
        return key

    def __len__(self) -> int:
        return len(self.keys())

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        for _, key, image in self.items():
            yield key, image

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def items(self, start: int = 0) -> Items:
        """(position, key, image) for each readable item from candidate position ``start`` on; the
        returned iteration lists the unreadable ones in ``skipped`` as it meets them."""
        return Items(self, start)


class Items:
    """One iteration over a source (``ImageSource.items``): yields (position, key, image) of the
    readable items and records the others as (key, reason) in ``skipped``. A full iteration in
    which every item fails raises a NeuronscopeError naming the count."""

    def __init__(self, source: ImageSource, start: int = 0) -> None:
        self.source, self.start = source, start
        self.skipped: list[tuple[str, str]] = []

    def __iter__(self) -> Iterator[tuple[int, str, np.ndarray]]:
        keys = self.source.keys()
        loaded = 0
        for position in range(self.start, len(keys)):
            key = keys[position]
            try:
                image = self.source.load(key)
            except NeuronscopeError as error:
                self.skipped.append((key, str(error)))
                continue
            loaded += 1
            yield position, key, image
        if self.start == 0 and loaded == 0 and keys:
            raise NeuronscopeError(
                f"no readable image in {self.source.name}: all {len(keys)} files failed to load "
                f"(first: {self.skipped[0][1]})"
            )


def bundled_source(names: Sequence[str] | None = None,
                   lattice: Sequence[tuple[float, int]] = BUNDLED_LATTICE) -> ImageSource:
    """The embedded default dataset: deterministic square crops at several scales of every
    bundled photo (``neuronscope.data.PHOTOS``, 11 photos).

    With the defaults: 30 crops per photo (``BUNDLED_LATTICE``), 330 in all. Keys read
    ``"chelsea@0.5,4"``: photo, scale, crop index in row-major order. The same crops as
    ``data.photo_crops`` (both read ``data.photos.crop_table``).
    """
    return BundledSource(names, lattice)


def extra_source() -> ImageSource:
    """Crops (``BUNDLED_LATTICE``) of the other images inside scikit-image (``data.EXTRA_IMAGES``:
    textures, text, microscopy; 9 images, 270 crops), for training where variety helps and the
    bundled photos are few: ``learn_dictionary(..., also_train_on=extra_source())``."""
    return BundledSource(list(EXTRA_IMAGES), BUNDLED_LATTICE, what="extra images")


def folder_source(path: str | Path) -> ImageSource:
    """Every .jpg, .jpeg, .png and .webp file below ``path`` (recursive, case-insensitive,
    hidden files and folders ignored), in sorted order of relative path, which is the key.

    An ImageFolder layout (every image exactly one sub-folder deep: ``dogs/1.jpg``,
    ``cats/2.jpg``) is labelled: ``source.label(key)`` is the sub-folder's name."""
    return FolderSource(path)


def file_list_source(files: str | Path | Iterable[str | Path]) -> ImageSource:
    """Image files listed explicitly, or in a text file with one path per line (blank lines and
    lines starting with ``#`` are ignored; relative paths are relative to the text file).
    Missing or unreadable files are skipped like unreadable files of a folder."""
    return FileListSource(files)


def first(source: ImageSource, count: int) -> ImageSource:
    """The first ``count`` candidates of ``source`` (a quick run on a big folder)."""
    return FirstSource(source, count)


def subset(source: ImageSource, keys: Sequence[str], what: str = "subset") -> ImageSource:
    """The items of ``source`` named by ``keys``, in the source's order (``what`` describes them)."""
    chosen = set(keys)
    unknown = chosen - set(source.keys())
    if unknown:
        raise NeuronscopeError(f"{len(unknown)} keys are not items of {source.name}, e.g. '{sorted(unknown)[0]}'")
    return SubsetSource(source, [key for key in source.keys() if key in chosen], what)


class BundledSource(ImageSource):
    """Crops of the bundled photos; see ``bundled_source``."""

    def __init__(self, names: Sequence[str] | None, lattice: Sequence[tuple[float, int]], what: str = "photos") -> None:
        self._crops = crop_table(names, lattice)
        self.names = list(names) if names is not None else photo_names()
        self.lattice = tuple((float(s), int(g)) for s, g in lattice)
        self._keys = list(self._crops)
        self._photo: tuple[str, np.ndarray] | None = None  # the last photo decoded, reused by its crops
        self.name = f"bundled {what} ({len(self.names)} {what.split()[-1]}, {len(self._keys)} crops)"

    def keys(self) -> Sequence[str]:
        return self._keys

    def load(self, key: str) -> np.ndarray:
        if key not in self._crops:
            raise NeuronscopeError(f"'{key}' is not an item of {self.name}: {did_you_mean(key, self._keys)}")
        name, scale, grid, index = self._crops[key]
        if self._photo is None or self._photo[0] != name:
            self._photo = (name, photo(name))
        return lattice_crop(self._photo[1], scale, grid, index)

    def group(self, key: str) -> str:
        return key.split("@")[0]  # the photo

    def fingerprint(self) -> str:
        sizes = [(n, _file_size(photo_path(n))) for n in self.names]
        return stable_hash([BUNDLED_VERSION, sizes, self.lattice])


class FolderSource(ImageSource):
    """Image files below a folder; see ``folder_source``."""

    def __init__(self, path: str | Path) -> None:
        root = Path(path).expanduser()
        if not root.exists():
            raise NeuronscopeError(f"image folder '{path}' does not exist")
        if not root.is_dir():
            raise NeuronscopeError(f"'{path}' is not a folder; give a folder of images (or a .txt file listing them)")
        self.root = root
        self._keys = sorted(_image_files(root))
        if not self._keys:
            raise NeuronscopeError(
                f"no image files in folder '{path}' (looked recursively for {', '.join(IMAGE_SUFFIXES)})"
            )
        self.classes = _folder_classes(self._keys)
        """Class names (sorted) when the folder is an ImageFolder layout, else None."""
        kind = f", {len(self.classes)} classes" if self.classes else ""
        self.name = f"folder {root} ({len(self._keys)} files{kind})"

    def keys(self) -> Sequence[str]:
        return self._keys

    def load(self, key: str) -> np.ndarray:
        return load_image(self.root / key)

    def label(self, key: str) -> str | None:
        return key.partition("/")[0] if self.classes else None

    def fingerprint(self) -> str:
        return stable_hash(["folder", [(key, *_file_stat(self.root / key)) for key in self._keys]])


class FileListSource(ImageSource):
    """Explicitly listed image files; see ``file_list_source``."""

    def __init__(self, files: str | Path | Iterable[str | Path]) -> None:
        if isinstance(files, (str, Path)):
            listing = Path(files).expanduser()
            if not listing.is_file():
                raise NeuronscopeError(f"file list '{files}' does not exist")
            lines = [line.strip() for line in listing.read_text(errors="replace").splitlines()]
            paths = [listing.parent / line if not Path(line).expanduser().is_absolute() else Path(line).expanduser()
                     for line in lines if line and not line.startswith("#")]
            described = f"file list {listing}"
        else:
            paths = [Path(p).expanduser() for p in files]
            described = "file list"
        if not paths:
            raise NeuronscopeError(f"{described} names no image files")
        self._paths = {str(p): p for p in paths}
        self._keys = list(self._paths)
        self.name = f"{described} ({len(self._keys)} files)"

    def keys(self) -> Sequence[str]:
        return self._keys

    def load(self, key: str) -> np.ndarray:
        if key not in self._paths:
            raise NeuronscopeError(f"'{key}' is not in {self.name}")
        return load_image(self._paths[key])

    def fingerprint(self) -> str:
        return stable_hash(["files", [(key, *_file_stat(self._paths[key])) for key in self._keys]])


class SubsetSource(ImageSource):
    """Some items of another source, ``keys`` in the source's order; see ``subset``."""

    def __init__(self, source: ImageSource, keys: Sequence[str], what: str) -> None:
        self.source = source
        self._keys = list(keys)
        self.name = f"{what} ({len(self._keys)} of {source.name})"

    def keys(self) -> Sequence[str]:
        return self._keys

    def load(self, key: str) -> np.ndarray:
        return self.source.load(key)

    def label(self, key: str) -> str | None:
        return self.source.label(key)

    def group(self, key: str) -> str:
        return self.source.group(key)

    def fingerprint(self) -> str:
        return stable_hash(["subset", self._keys, self.source.fingerprint()])


class FirstSource(SubsetSource):
    """The first items of another source; see ``first``."""

    def __init__(self, source: ImageSource, count: int) -> None:
        if count < 1:
            raise NeuronscopeError(f"first(source, count) needs count >= 1, got {count}")
        super().__init__(source, source.keys()[:count], "first")
        self.name = f"first {len(self._keys)} of {source.name}"

    def fingerprint(self) -> str:
        return stable_hash(["first", len(self._keys), self.source.fingerprint()])


def _folder_classes(keys: Sequence[str]) -> list[str] | None:
    """The sub-folder names when every key is exactly ``class/file`` (ImageFolder's layout)."""
    if not keys or any(key.count("/") != 1 for key in keys):
        return None
    return sorted({key.partition("/")[0] for key in keys})


def _image_files(root: Path) -> Iterator[str]:
    for folder, subfolders, files in os.walk(root, followlinks=False):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for file in files:
            if not file.startswith(".") and file.lower().endswith(IMAGE_SUFFIXES):
                yield (Path(folder) / file).relative_to(root).as_posix()


def _file_stat(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1

