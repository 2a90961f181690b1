"""Caricatures: what a layer "sees" in a photo, without choosing neurons.

A caricature of image x0 at layer L is an image whose activations at L are a more extreme
version of x0's: it maximizes ``<a, a0> * max(0.1, cos(a, a0))^p`` (Lucid issue #121). It does
not depend on the basis of the layer (any rotation of the channels leaves it unchanged), so it
works where neuron visualizations fail and it compares layers and models directly.

The reference and the caricatures ride in one batch and get the same random transform at every
step, so ``a0`` is recomputed on the transformed reference and stays aligned position by position.

    result = caricature(model, "chelsea", ["blocks.2.1", "blocks.4.2"])
    result.sheet().save("sheet.png")

Attributive caricatures replace ``a0`` by the reference's attribution ``a0 * dF/da0`` for a score
F (a class logit or a later unit), normalized to a maximum of 1: they show the evidence for that
class the network saw.
"""
from .attributive import attributive_caricature, normalized_attribution
from .core import CaricatureConfig, Caricatures, caricature, caricature_objective
from .views import (
           ModelCaricatures,
           caricatures_across_models,
           similarity_maps,
           similarity_overlay,
           similarity_sheet,
)

__all__ = ["CaricatureConfig", "Caricatures", "attributive_caricature", "caricature", "caricature_objective",
           "ModelCaricatures", "caricatures_across_models", "normalized_attribution", "similarity_maps", "similarity_overlay",
           "similarity_sheet"]
