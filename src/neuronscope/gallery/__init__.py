"""The Microscope-style gallery: a resumable static site of a model's units and photos."""
from .build import BuildSummary, build_gallery
from .config import GalleryConfig
from .multi import build_galleries
from .serve import make_server, serve_in_background

__all__ = ["BuildSummary", "GalleryConfig", "build_galleries", "build_gallery", "make_server", "serve_in_background"]
