"""Scale-out: a gallery build on a Ray cluster (``pip install 'neuronscope[ray]'``).

The single-machine path (``gallery.engine.LocalEngine``) needs none of this; see docs/scale.md.
"""
from .ray_engine import RayConfig, RayEngine

__all__ = ["RayConfig", "RayEngine"]
