"""neuronscope: see what a vision model has learned.

    import neuronscope as ns
    model = ns.load("efficientnet_lite0")
    ns.classify(model, ["chelsea"])
    result = ns.render_units(model, ["blocks.4.2:7", "logits:tabby"])
    result.save("out/")

The public API, by family. Every function takes the model first, then what it analyses (units,
an image, a source of images), then where (layers, a folder); settings come as small config
dataclasses. Results draw themselves with ``.sheet()`` (drawing only) and save their files
with a manifest.
"""
from . import data
from .atlas import Atlas, AtlasConfig, AtlasSamples, activation_atlas
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
from .attribution.agreement import agreement
from .attribution.method import best_method, method_agreements
from .attribution.unit_classes import unit_classes
from .capture import Capture, capture
from .circuits import (
                          MechanicsConfig,
                          contributions,
                          decompose,
                          expanded_weights,
                          firing_cases,
                          weight_factors,
)
from .circuits.polysemanticity import polysemanticity
from .comparison import MatchConfig, MatchedUnits, UnitMatches, match_units, matched_units
from .data import ImageSource, resolve_source
from .dictionaries import Dictionary, DictionaryConfig, learn_dictionary, with_features
from .dictionaries.features import feature_examples, render_features
from .dictionaries.overview import FeatureOverview, feature_overview
from .errors import NeuronscopeError
from .examples import ExamplesConfig, LayerExamples, dataset_examples
from .featurevis import LoopConfig, Plateau, objectives, optimize
from .featurevis.accentuate import Accentuation, accentuate
from .featurevis.caricature import (
                          CaricatureConfig,
                          ModelCaricatures,
                          attributive_caricature,
                          caricature,
                          caricatures_across_models,
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
from .gallery import BuildSummary, GalleryConfig, build_galleries, build_gallery
from .interpretability import (
                          InterpretabilityScores,
                          ScoreConfig,
                          UnitScore,
                          converged,
                          interpretability,
                          path_similarity,
                          with_random_directions,
)
from .interventions import (
                          Ablate,
                          AblationCheckConfig,
                          ActivationMeans,
                          Intervention,
                          ScaleGroup,
                          Steer,
                          ablation_check,
                          intervene,
                          mean_activations,
)
from .models import (
                          DEFAULT_MODEL,
                          LayerInfo,
                          Model,
                          ModelInfo,
                          ModelSpec,
                          available_models,
                          imagenet_labels,
                          load,
                          matched_layers,
                          representative_layers,
                          wrap,
)
from .names import INPUT, LOGITS
from .predict import Prediction, Verdict, classify, verdicts
from .readout import ImageReading, Reading, read_image, read_units
from .replay import read_manifest, rerender
from .stream import PassConfig, PassResult, stream
from .units import Unit, parse_unit, parse_units

__version__ = "0.1.0"

__all__ = [
    # models and running them
    "DEFAULT_MODEL", "INPUT", "LOGITS", "Capture", "LayerInfo", "Model", "ModelInfo", "ModelSpec", "NeuronscopeError", "Unit",
    "available_models", "capture", "imagenet_labels", "load", "matched_layers", "parse_unit", "parse_units",
    "representative_layers", "wrap", "data",
    # reading a model
    "ImageReading", "Prediction", "Reading", "Verdict", "classify", "read_image", "read_units", "verdicts",
    # feature visualization and caricatures
    "Accentuation", "CaricatureConfig", "LoopConfig", "ModelCaricatures", "Plateau", "RenderConfig", "RenderWarning",
    "Result", "TransformConfig", "accentuate", "attributive_caricature", "caricature", "caricatures_across_models",
    "crop_robustness", "objectives", "optimize", "render", "render_layer", "render_units",
    # building blocks
    "activation_grid", "agreement", "attribute", "attribute_all_classes", "best_method", "class_factors",
    "class_support", "integrated_attribute", "method_agreements", "neuron_groups", "semantic_dictionary",
    "unit_classes",
    # circuits
    "MechanicsConfig", "contributions", "decompose", "expanded_weights", "firing_cases", "polysemanticity",
    "weight_factors",
    # image sources, the one pass, dataset examples
    "ExamplesConfig", "ImageSource", "LayerExamples", "PassConfig", "PassResult", "dataset_examples",
    "resolve_source", "stream",
    # the gallery, and outputs made again
    "BuildSummary", "GalleryConfig", "build_galleries", "build_gallery", "read_manifest", "rerender",
    # comparing models
    "MatchConfig", "MatchedUnits", "UnitMatches", "match_units", "matched_units",
    # activation atlases
    "Atlas", "AtlasConfig", "AtlasSamples", "activation_atlas",
    # a verdict on every unit: interpretability scores and sanity checks
    "InterpretabilityScores", "ScoreConfig", "UnitScore", "converged", "interpretability", "path_similarity",
    "with_random_directions",
    # causal tests: ablate or steer units and watch the prediction
    "Ablate", "AblationCheckConfig", "ActivationMeans", "Intervention", "ScaleGroup", "Steer", "ablation_check", "intervene",
    "mean_activations",
    # features that are not neurons: dictionaries
    "Dictionary", "DictionaryConfig", "FeatureOverview", "feature_examples", "feature_overview", "learn_dictionary",
    "with_features",
    "render_features",
]
