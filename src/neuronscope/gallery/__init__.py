"""The Microscope-style gallery: a resumable static site of models' units, photos and comparisons."""
from .build import build_galleries, build_gallery
from .config import GalleryConfig
from .engine import Engine, LocalEngine
from .model_build import BuildSummary
from .serve import make_server, serve_in_background

__all__ = ["BuildSummary", "Engine", "GalleryConfig", "LocalEngine", "build_galleries", "build_gallery", "make_server",
           "serve_in_background"]
