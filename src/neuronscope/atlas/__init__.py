"""Activation atlases and class activation atlases (``activation_atlas``)."""
from .atlas import activation_atlas
from .collect import Samples, collect
from .config import AtlasConfig
from .result import Atlas

__all__ = ["Atlas", "AtlasConfig", "Samples", "activation_atlas", "collect"]
