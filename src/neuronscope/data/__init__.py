"""Images: the bundled photos (``photos``), image sources for dataset examples (``sources``,
``datasets``), decoding them into model inputs (``loading``, ``preprocess``)."""
from . import preprocess
from .datasets import dataset_source, tar_shards_source
from .loading import Preparer
from .photos import (
           EXTRA_IMAGES,
           PHOTOS,
           Photo,
           load_image,
           photo,
           photo_crops,
           photo_names,
           photo_path,
           photos,
           resolve_image,
)
from .resolve import resolve_source
from .sources import (
           ImageSource,
           Items,
           bundled_source,
           extra_source,
           file_list_source,
           first,
           folder_source,
           subset,
)

__all__ = ["EXTRA_IMAGES", "PHOTOS", "extra_source", "ImageSource", "Items", "Photo", "Preparer", "bundled_source", "dataset_source", "file_list_source", "first", "folder_source", "subset",
           "load_image", "photo", "photo_crops", "photo_names", "photo_path", "photos", "resolve_image", "resolve_source",
           "preprocess", "tar_shards_source"]
