"""Models: the `Model` type and its metadata, the offline zoo, `wrap` for any module, labels, and
layers by relative depth (for comparing models)."""
from .adapter import wrap
from .depth import matched_layers, nearest_depth, representative_layers
from .labels import Labels, imagenet_labels
from .metadata import ModelInfo
from .model import LOGITS, LayerInfo, Model
from .spec import ModelSpec, load
from .zoo import DEFAULT_MODEL, available_models

__all__ = ["DEFAULT_MODEL", "LOGITS", "LayerInfo", "Labels", "Model", "ModelInfo", "ModelSpec", "available_models",
           "imagenet_labels", "load", "matched_layers", "nearest_depth", "representative_layers", "wrap"]
