"""A dictionary's features as a layer of the model: ``with_features(model, dictionary)`` adds the
derived layer ``blocks.4.2.features``, so ``blocks.4.2.features:17`` (and ``:17@3,4``) is a unit
like any channel: render, dataset examples, attribution, matching and the gallery take it.

The layer's values are the features' *pre-activations* (linear in the parent's output, so a
render's gradient and an attribution are those of a direction); a feature *fires* where its code
(``Dictionary.encode``) is non-zero. Replacing the layer's values in a capture (an intervention)
changes the parent's output by the change of the reconstruction from the encoder's codes
(``Dictionary.codes_of``, never refitted: a refit would let the other features make up for an
ablated one), and leaves the reconstruction's error in place.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import NeuronscopeError
from ..models.derived import derived_name
from ..models.model import Model
from .dictionary import Dictionary
from .rates import frequent_features, recorded_rates

SUFFIX = "features"
"""The derived layer's name after the parent's: ``blocks.4.2.features``."""


@dataclass(frozen=True, eq=False)
class FeatureLayer:
    """The derived layer of ``dictionary``'s features (``models.derived.DerivedLayer``)."""

    dictionary: Dictionary
    suffix: str = SUFFIX

    @property
    def parent(self) -> str:
        return self.dictionary.layer

    @property
    def name(self) -> str:
        return derived_name(self.parent, self.suffix)

    @property
    def channels(self) -> int:
        return self.dictionary.features

    @property
    def kind(self) -> str:
        return f"{self.dictionary.kind} features"

    @property
    def fingerprint(self) -> str:
        if self.dictionary.fingerprint:
            return self.dictionary.fingerprint
        digest = hashlib.sha256()  # a dictionary made outside learn_dictionary: its tensors say what it is
        for tensor in (self.dictionary.encoder, self.dictionary.encoder_bias, self.dictionary.decoder):
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def objective_scale(self) -> float:
        """The training vectors' RMS distance to their mean (TopK pre-activations are in units of
        it; at Lite0 blocks.4.2 it makes their dataset peaks 18-46 against the channels' 27-42)."""
        return float(self.dictionary.scale)

    @property
    def file(self) -> str | None:
        return self.dictionary.manifest.get("file")

    def ranked(self) -> list[int]:
        """The features that fire on the training vectors, most frequent first, without dense ones
        (``frequent_features``); every feature in order when the manifest has no firing rates."""
        rates = recorded_rates(self.dictionary)
        return list(range(self.channels)) if rates is None else frequent_features(rates)

    def read(self, parent: torch.Tensor) -> torch.Tensor:
        return self.dictionary.pre_activation(parent)

    def write(self, parent: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        dictionary = self.dictionary
        change = dictionary.decode(dictionary.codes_of(after)) - dictionary.decode(dictionary.codes_of(before))
        return parent + change.to(parent.dtype)


def with_features(model: Model, dictionary: Dictionary, name: str = SUFFIX) -> Model:
    """``model`` with ``dictionary``'s features as the derived layer ``<layer>.<name>``."""
    info = model.layer(dictionary.layer)
    if info.channels != dictionary.channels:
        raise NeuronscopeError(f"the dictionary was learned on {dictionary.channels} channels, but {info.name} of "
                               f"{model.name} has {info.channels}: learn it on this model")
    if not name.isidentifier():
        raise NeuronscopeError(f"a feature layer's name must be a plain word (letters, digits, '_'), got '{name}'")
    return model.with_layers(FeatureLayer(dictionary, name))


def with_recorded_features(model: Model, recorded: dict) -> Model:
    """``model`` with the derived layers a manifest records (``derived_layers``: name ->
    fingerprint and file), each dictionary loaded from its file and checked against its fingerprint."""
    for name, entry in recorded.items():
        entry = entry if isinstance(entry, dict) else {"fingerprint": entry, "file": None}
        file = entry.get("file")
        if not file or not Path(file).is_file():
            raise NeuronscopeError(f"the manifest's layer '{name}' comes from a dictionary file that is not there "
                                   f"({file or 'no file recorded'}); pass the model with its features as model=")
        dictionary = Dictionary.load(file)
        if FeatureLayer(dictionary).fingerprint != entry.get("fingerprint"):
            raise NeuronscopeError(f"{file} is another dictionary than the one the manifest's '{name}' was made with")
        model = with_features(model, dictionary, name.rpartition(".")[2])
    return model
