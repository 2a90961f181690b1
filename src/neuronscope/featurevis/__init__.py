"""Feature visualization: objectives, image parameterizations, transformation robustness, the one
optimization loop, rendering units, and caricatures."""
from . import objectives
from .render import (
           RenderConfig,
           RenderWarning,
           Result,
           render,
           render_layer,
           render_units,
)
from .transforms import TransformConfig

__all__ = ["RenderConfig", "RenderWarning", "Result", "TransformConfig", "objectives", "render", "render_layer",
           "render_units"]
