"""Models: the `Model` type, the offline zoo, `wrap` for any module, labels and preprocessing."""
from .adapter import wrap
from .labels import Labels, imagenet_labels
from .metadata import ModelInfo
from .model import LOGITS, LayerInfo, Model
from .spec import ModelSpec, load
from .zoo import DEFAULT_MODEL, available_models

__all__ = ["DEFAULT_MODEL", "LOGITS", "LayerInfo", "Labels", "Model", "ModelInfo", "ModelSpec", "available_models", "imagenet_labels", "load", "wrap"]
