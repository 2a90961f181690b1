"""Building Blocks: attribution to hidden layers, matrix factorization (class factors, neuron
groups), semantic dictionaries and activation grids."""
from .dictionary import (
           ActivationGrid,
           SemanticDictionary,
           activation_grid,
           channel_icons,
           semantic_dictionary,
)
from .factor import ClassFactors, class_factors
from .groups import ExplainedGroups, NeuronGroups, neuron_groups
from .hidden import (
           Attribution,
           attribute,
           attribute_all_classes,
           attribute_checked,
           default_layer,
           logit_agreement,
)
from .integrated import ClassSupport, class_support, integrated_attribute

__all__ = ["ActivationGrid", "Attribution", "ClassFactors", "ClassSupport", "ExplainedGroups",
           "NeuronGroups", "SemanticDictionary", "activation_grid", "attribute", "attribute_all_classes",
           "attribute_checked", "channel_icons", "class_factors", "class_support", "default_layer",
           "integrated_attribute", "logit_agreement", "neuron_groups", "semantic_dictionary"]
