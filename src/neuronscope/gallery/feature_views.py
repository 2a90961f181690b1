"""The gallery's dictionary features (``GalleryConfig.features``): a dictionary learned at each shown
layer of the network (the vectors of every such layer from one pass; with the bundled photos, the
extra images of ``data.extra_source`` join the training; each dictionary cached by its
fingerprint), attached as the derived layer ``<layer>.features``, and the records that put
neurons and features side by side on their pages."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..data.resolve import training_extra
from ..data.sources import ImageSource
from ..dictionaries.basis import basis_summary, feature_neurons, neuron_features
from ..dictionaries.config import DENSE
from ..dictionaries.dictionary import Dictionary
from ..dictionaries.layer import FeatureLayer, with_features
from ..dictionaries.learn import cached_path, dictionary_fingerprint, learn_dictionary
from ..dictionaries.rates import recorded_rates
from ..dictionaries.samples import ActivationVectors
from ..models.model import Model
from ..stream import PassConfig, stream
from .config import GalleryConfig
from .plan import make_plan, network

LISTED = 8
"""Neurons listed on a feature's page, and features on a neuron's page."""


def with_gallery_features(model: Model, config: GalleryConfig, source: ImageSource, cache: Path) -> Model:
    """``model`` with a dictionary's features at each network layer the gallery shows."""
    layers = network(model, make_plan(model, config.layers, config.units).layers)
    settings = replace(config.features, progress=config.progress)
    extra = training_extra(None, config.source)
    fingerprints = (source.fingerprint(), extra.fingerprint() if extra is not None else None)  # once for all layers
    cached = {layer: cached_path(cache, dictionary_fingerprint(model, layer, settings, *fingerprints)) for layer in layers}
    pending = [layer for layer in layers if not cached[layer].exists()]
    vectors = {}
    if pending:
        accumulators = [ActivationVectors(model, layer, settings.positions, settings.seed) for layer in pending]
        stream(source, accumulators, PassConfig(batch=settings.image_batch, progress=config.progress),
               what="dictionary vectors")
        vectors = {a.layer: a.finish() for a in accumulators}
    for layer in layers:
        dictionary = (learn_dictionary(model, source, layer, settings, also_train_on=extra, cache_dir=cache,
                                       vectors=vectors.pop(layer)) if layer in pending else Dictionary.load(cached[layer]))
        model = with_features(model, dictionary)
    return model


def feature_records(model: Model, shown: dict[str, list[int]]) -> dict[str, dict]:
    """Per layer, what its pages show of the other basis: a feature layer gets its dictionary's
    report and basis summary and, per shown feature, the neurons it is made of; its parent gets,
    per shown neuron, the features it takes part in. Entries are [unit, weight, share], the share
    being the squared weight (the feature's unit direction: its shares over all neurons sum to 1)."""
    records: dict[str, dict] = {}
    for name, layer in model.derived.items():
        if not isinstance(layer, FeatureLayer) or name not in shown:
            continue
        dictionary = layer.dictionary
        rates = recorded_rates(dictionary)
        rates = rates if rates is not None else torch.ones(dictionary.features)
        records[name] = {
            "dictionary": {"parent": layer.parent, "kind": dictionary.kind, "k": dictionary.k, "dense_above": DENSE,
                           "features": dictionary.features, "fingerprint": dictionary.fingerprint,
                           "quality": dictionary.manifest.get("quality"),
                           "basis": basis_summary(dictionary, rates).to_dict()},
            "made_of": {str(f): _entries(feature_neurons(dictionary, f, LISTED)) for f in shown[name]}}
        records.setdefault(layer.parent, {})["features_of"] = {
            "layer": name,
            "units": {str(c): _entries(neuron_features(dictionary, c, LISTED, rates)) for c in shown.get(layer.parent, ())}}
    return records


def _entries(pairs: list[tuple[int, float]]) -> list[list]:
    return [[unit, round(weight, 4), round(weight * weight, 4)] for unit, weight in pairs]
