"""Features that are not neurons: dictionaries (a TopK sparse autoencoder, or NMF) learned on a
layer's activation vectors over a source, each feature a direction in that layer's space.

    dictionary = learn_dictionary(model, bundled_source(), "blocks.4.2", DictionaryConfig(k=32))
    dictionary.manifest["quality"]     # explained variance, L0, dead, stability, spliced agreement
    dictionary.pre_activation(acts)    # (B, features, H, W): each feature's response, linear in acts
    featured = with_features(model, dictionary)   # unit addresses like "blocks.4.2.features:17@3,4"
"""
from .basis import BasisSummary, basis_summary, feature_neurons, neuron_features
from .config import DictionaryConfig
from .dictionary import Dictionary
from .layer import FeatureLayer, with_features
from .learn import collect_vectors, learn_dictionary, split
from .quality import QualityReport, spliced_agreement, stability, vector_quality
from .samples import ActivationVectors, Vectors

__all__ = ["ActivationVectors", "Dictionary", "DictionaryConfig", "QualityReport", "Vectors", "collect_vectors",
           "learn_dictionary", "spliced_agreement", "split", "stability", "vector_quality",
           "FeatureLayer", "with_features", "BasisSummary", "basis_summary", "feature_neurons", "neuron_features"]
