"""Feature visualization: objectives, image parameterizations, transformation robustness, the one
optimization loop, rendering units, and caricatures."""
from . import objectives
from .callbacks import Plateau
from .loop import LoopConfig, optimize
from .render import (
           RenderConfig,
           RenderWarning,
           Result,
           render,
           render_layer,
           render_units,
)
from .transforms import TransformConfig

__all__ = ["LoopConfig", "Plateau", "RenderConfig", "RenderWarning", "Result", "TransformConfig", "objectives",
           "optimize", "render", "render_layer", "render_units"]
