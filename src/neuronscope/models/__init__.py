"""Models: the `Model` type, the offline zoo, `wrap` for any module, labels and preprocessing."""
from .adapter import wrap
from .labels import imagenet_labels
from .model import LOGITS, LayerInfo, Model
from .zoo import DEFAULT_MODEL, available_models, load

__all__ = ["DEFAULT_MODEL", "LOGITS", "LayerInfo", "Model", "available_models", "imagenet_labels", "load", "wrap"]
