"""``feature_overview``: learn a dictionary in one pass and show its most frequent features, as the
``features`` command does: visualizations beside dataset examples, the report, the manifest."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ..data.sources import ImageSource
from ..featurevis.render import RenderConfig, Result
from ..images import save_sheet
from ..manifest import derived_manifest, write_json
from ..models.model import Model
from .config import DENSE, DictionaryConfig
from .dictionary import Dictionary
from .features import FeatureExamples, feature_examples, feature_sheet, render_features
from .learn import collect_vectors, learn_dictionary
from .rates import firing_rates, frequent_features


@dataclass
class FeatureOverview:
    """A dictionary, its features' firing rates, and the shown features' renders and examples."""

    model: Model
    source: ImageSource
    dictionary: Dictionary
    rates: torch.Tensor
    examples: FeatureExamples
    rendered: Result

    @property
    def dense(self) -> int:
        return int((self.rates > DENSE).sum())

    def report(self) -> dict:
        """The quality report with the layer, the dictionary's size and its dense features."""
        return {"layer": self.dictionary.layer, "features": self.dictionary.features,
                **self.dictionary.manifest.get("quality", {}), "dense_features": self.dense, "dense_above": DENSE}

    @property
    def manifest(self) -> dict:
        shown = self.examples.features
        return derived_manifest("features", self.dictionary.manifest, dictionary=self.dictionary.manifest, shown=shown,
                                render=self.rendered.manifest, firing_rates=[round(float(self.rates[f]), 4) for f in shown])

    def sheet(self) -> Image.Image:
        return feature_sheet(self.model, self.dictionary, self.source, self.examples, self.rendered, self.rates)

    def save(self, folder: str | Path) -> Path:
        """``dictionary.npz`` (+ .json), ``report.json`` and ``features.png`` (+ .json) in ``folder``;
        returns the sheet's path."""
        folder = Path(folder)
        self.dictionary.save(folder / "dictionary.npz")
        write_json(folder / "report.json", self.report())
        return save_sheet(folder / "features.png", self.sheet(), self.manifest)


def feature_overview(model: Model, source: ImageSource, layer: str, config: DictionaryConfig = DictionaryConfig(), *,
                     also_train_on: ImageSource | None = None, show: int = 8, render: RenderConfig | None = None,
                     cache_dir: str | Path | None = None) -> FeatureOverview:
    """Learn a dictionary at ``layer`` from one pass over ``source`` (and ``also_train_on``, see
    ``learn_dictionary``; reused from ``cache_dir`` when its fingerprint is there) and render its
    ``show`` most frequent non-dense features, with their top examples from ``source``."""
    vectors = collect_vectors(model, source, layer, config)
    dictionary = learn_dictionary(model, source, layer, config, also_train_on=also_train_on, cache_dir=cache_dir,
                                  vectors=vectors)
    rates = firing_rates(dictionary, vectors.vectors)
    shown = frequent_features(rates)[:show]
    examples = feature_examples(model, dictionary, vectors, shown, top=5)
    return FeatureOverview(model, source, dictionary, rates, examples, render_features(model, dictionary, shown, render))
