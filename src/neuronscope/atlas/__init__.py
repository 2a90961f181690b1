"""Activation atlases and class activation atlases (``activation_atlas``)."""
from .atlas import activation_atlas
from .collect import AtlasSamples, Samples, collect
from .config import AtlasConfig
from .result import Atlas

__all__ = ["Atlas", "AtlasConfig", "AtlasSamples", "Samples", "activation_atlas", "collect"]
