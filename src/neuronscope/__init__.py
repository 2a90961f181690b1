"""neuronscope: see what a vision model has learned.

    import neuronscope as ns
    model = ns.load("efficientnet_lite0")
    ns.classify(model, ["chelsea"])
    result = ns.render_units(model, ["blocks.4.2:7", "logits:tabby"])
    result.save("out/")

The public API, by family. Every function takes the model first, then what it analyses (units,
an image), then where (layers, a folder).
"""
from . import data
from .atlas import Atlas, AtlasConfig, activation_atlas
from .attribution import (
                          activation_grid,
                          attribute,
                          attribute_all_classes,
                          class_factors,
                          class_support,
                          integrated_attribute,
                          neuron_groups,
                          semantic_dictionary,
)
from .capture import Capture, capture
from .circuits import (
                          contributions,
                          decompose,
                          expanded_weights,
                          firing_cases,
                          weight_factors,
)
from .comparison import MatchConfig, UnitMatches, match_units
from .errors import NeuronscopeError
from .examples import dataset_examples
from .featurevis import objectives
from .featurevis.accentuate import Accentuation, accentuate
from .featurevis.caricature import (
                          CaricatureConfig,
                          attributive_caricature,
                          caricature,
                          compare_models,
)
from .featurevis.render import (
                          RenderConfig,
                          RenderWarning,
                          Result,
                          render,
                          render_layer,
                          render_units,
)
from .featurevis.robustness import crop_robustness
from .featurevis.transforms import TransformConfig
from .gallery import GalleryConfig, build_gallery
from .models import (
                          DEFAULT_MODEL,
                          LayerInfo,
                          Model,
                          ModelSpec,
                          available_models,
                          imagenet_labels,
                          load,
                          wrap,
)
from .names import INPUT, LOGITS
from .predict import Prediction, Verdict, classify, verdicts
from .readout import Reading, read_units
from .units import Unit, parse_unit, parse_units

__version__ = "0.1.0"

__all__ = [
    # models and running them
    "DEFAULT_MODEL", "INPUT", "LOGITS", "Capture", "LayerInfo", "Model", "ModelSpec", "NeuronscopeError", "Unit",
    "available_models", "capture", "imagenet_labels", "load", "parse_unit", "parse_units", "wrap", "data",
    # reading a model
    "Prediction", "Reading", "Verdict", "classify", "read_units", "verdicts",
    # feature visualization and caricatures
    "Accentuation", "CaricatureConfig", "RenderConfig", "RenderWarning", "Result", "TransformConfig", "accentuate",
    "attributive_caricature", "caricature", "compare_models", "crop_robustness", "objectives", "render", "render_layer",
    "render_units",
    # building blocks
    "activation_grid", "attribute", "attribute_all_classes", "class_factors", "class_support", "integrated_attribute",
    "neuron_groups", "semantic_dictionary",
    # circuits
    "contributions", "decompose", "expanded_weights", "firing_cases", "weight_factors",
    # dataset examples and the gallery
    "GalleryConfig", "build_gallery", "dataset_examples",
    # comparing models
    "MatchConfig", "UnitMatches", "match_units",
    # activation atlases
    "Atlas", "AtlasConfig", "activation_atlas",
]
