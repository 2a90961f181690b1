"""neuronscope: see what a vision model has learned.

    import neuronscope as ns
    model = ns.load("efficientnet_lite0")
    ns.classify(model, ["chelsea"])
    with ns.capture(model, ["blocks.4.2"]) as cap:
        acts = cap(model.prepare(ns.data.photo("coffee")))
    result = ns.render_units(model, ["blocks.4.2:7", "logits:tabby"])
    result.save("out/")
"""
from . import data, objectives
from .capture import Capture, capture
from .errors import NeuronscopeError
from .models import DEFAULT_MODEL, LOGITS, LayerInfo, Model, available_models, imagenet_labels, load, wrap
from .predict import Prediction, classify
from .readout import Reading, read_units
from .render import RenderConfig, Result, render, render_layer, render_units
from .transforms import TransformConfig
from .units import Unit, parse_unit, parse_units

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL", "LOGITS", "Capture", "LayerInfo", "Model", "NeuronscopeError", "Prediction", "Reading", "RenderConfig",
    "Result", "TransformConfig", "Unit",
    "available_models", "capture", "classify", "data", "imagenet_labels", "load", "objectives", "parse_unit", "parse_units",
    "read_units", "render", "render_layer", "render_units", "wrap",
]
