"""Which image source a command-line argument names."""
from __future__ import annotations

from pathlib import Path

from ..errors import NeuronscopeError
from .datasets import is_tar_spec, tar_shards_source
from .sources import ImageSource, bundled_source, extra_source, file_list_source, folder_source


def resolve_source(spec: ImageSource | str | Path | None) -> ImageSource:
    """The source ``spec`` names (an ImageSource is returned as it is): nothing or ``"photos"`` for the bundled crops,
    a folder for its images (labelled when it is an ImageFolder layout), a ``.txt`` file for a
    list of files, an image file for itself, and a ``.tar`` file, a folder of them or a glob
    pattern for WebDataset-style tar shards."""
    if isinstance(spec, ImageSource):
        return spec
    if spec is None or str(spec) == "photos":
        return bundled_source()
    if is_tar_spec(spec):
        return tar_shards_source(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        return folder_source(path)
    if path.is_file():
        if path.suffix.lower() == ".txt":
            return file_list_source(path)
        return file_list_source([path])
    raise NeuronscopeError(
        f"image source '{spec}' not found: give a folder of images, a .txt file listing image files, "
        "tar shards (.tar, a folder or glob of them) or 'photos' for the bundled photos"
    )


def training_extra(spec: str | Path | None, source_spec: ImageSource | str | Path | None) -> ImageSource | None:
    """Images for training only beside a source (``learn_dictionary(also_train_on=)``): ``"none"``
    for none, ``"extra"`` for ``extra_source()``, else a source as ``resolve_source`` reads it;
    by default ``extra_source()`` when the source is the bundled photos (9 photos are little to
    learn from), and none for a user's own source."""
    if spec is None:
        return extra_source() if source_spec is None or str(source_spec) == "photos" else None
    if str(spec) == "none":
        return None
    return extra_source() if str(spec) == "extra" else resolve_source(spec)
