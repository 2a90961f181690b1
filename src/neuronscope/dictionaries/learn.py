"""``learn_dictionary``: activation vectors from one pass over a source, a held-out split by group
(the bundled photos: whole photos; other sources: images), training, and the quality report."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.sources import ImageSource, subset
from ..errors import NeuronscopeError
from ..manifest import build_manifest, model_fields, stable_hash
from ..models.digest import weights_digest
from ..models.model import Model
from ..stream import PassConfig, Runner, stream
from .config import DictionaryConfig
from .dictionary import Dictionary
from .finetune import FineTuning
from .quality import QualityReport, spliced_agreement, stability, vector_quality
from .rates import firing_rates
from .samples import ActivationVectors, Vectors
from .train import train

VERSION = 1
"""Bumped when the training changes what a fingerprint's dictionary is."""


def learn_dictionary(model: Model, source: ImageSource, layer: str, config: DictionaryConfig = DictionaryConfig(), *,
                     also_train_on: ImageSource | None = None, cache_dir: str | Path | None = None,
                     runner: Runner | None = None, vectors: Vectors | None = None) -> Dictionary:
    """A dictionary of ``layer``'s features learned on ``source`` (see ``DictionaryConfig``).

    ``config.holdout`` of the source's groups are held out of training; with ``config.report``,
    the quality report (``quality.QualityReport``: a second seed for stability, the spliced model
    on the held-out images) goes into ``dictionary.manifest["quality"]``, each feature's firing
    rate on the training vectors into ``manifest["firing_rates"]``. ``also_train_on``: more
    images for training only (never held out), e.g. ``data.extra_source()`` beside the few bundled
    photos. With ``cache_dir``, the dictionary is saved there under its fingerprint (model
    weights, layer, sources, settings) and a later call with the same fingerprint loads it
    instead of learning it again. ``vectors``: the layer's vectors over ``source`` if a pass
    already collected them (``ActivationVectors`` with ``config.positions`` and ``config.seed``),
    so that no pass over ``source`` is made here.
    """
    info = model.spatial_layer(layer)
    source_fingerprint = source.fingerprint()  # a folder's stats every file: once
    fingerprint = dictionary_fingerprint(model, info.name, config, source_fingerprint,
                                         also_train_on.fingerprint() if also_train_on is not None else None)
    cached = cached_path(cache_dir, fingerprint)
    if cached is not None and cached.exists():
        return Dictionary.load(cached)
    train_keys, heldout_keys = split(source, config.holdout, config.seed)
    if vectors is None:
        vectors = collect_vectors(model, source, info.name, config, runner=runner)
    heldout = np.isin(vectors.keys, np.array(heldout_keys, dtype=object))
    training = vectors.where(~heldout)
    if also_train_on is not None:
        training = training.joined(collect_vectors(model, also_train_on, info.name, config, runner=runner))
    training = _bounded(training, config.max_vectors, config.seed)
    if config.kind == "nmf" and bool((training.vectors < 0).any()):
        raise NeuronscopeError(f"NMF needs a non-negative layer, but {info.name} has negative activations "
                               f"(down to {float(training.vectors.min()):.3g}): choose a ReLU output "
                               "(like blocks.5.3.act1) or kind='topk'")
    start = time.perf_counter()
    dictionary = train(training.vectors, info.name, config, config.seed)
    seconds = {"vectors": round(time.perf_counter() - start, 1)}
    tuning = None
    if config.kind == "topk" and config.finetune_epochs:
        start = time.perf_counter()
        tuning = FineTuning(model, [(source, train_keys)] + ([(also_train_on, also_train_on.keys())] if also_train_on else []),
                            config)
        dictionary = tuning(dictionary, config.seed)
        seconds["finetune"] = round(time.perf_counter() - start, 1)
    rates = firing_rates(dictionary, training.vectors)
    manifest = build_manifest("dictionary", **model_fields(model), layer=info.name, source=source.name,
                              source_fingerprint=source_fingerprint, also_train_on=also_train_on and also_train_on.name,
                              settings=config.settings(), fingerprint=fingerprint, features=dictionary.features,
                              training_vectors=len(training),
                              training_images=len(train_keys) + (len(also_train_on.keys()) if also_train_on else 0),
                              heldout_images=len(heldout_keys), finetune_images=len(tuning.images) if tuning else 0,
                              training_seconds=seconds, firing_rates=[round(float(r), 6) for r in rates])
    if config.report:
        manifest["quality"] = quality_report(model, dictionary, training, vectors.where(heldout),
                                             subset(source, heldout_keys, "held out"), config, tuning).to_dict()
    dictionary = replace(dictionary, manifest=manifest)
    if cached is not None:
        dictionary.save(cached)
        dictionary = replace(dictionary, manifest={**manifest, "file": str(cached.resolve())})
    return dictionary


def dictionary_fingerprint(model: Model, layer: str, config: DictionaryConfig, source_fingerprint: str,
                          also_train_on_fingerprint: str | None = None) -> str:
    """What identifies a learned dictionary: the model's weights, the layer, the settings, the
    sources (by their fingerprints)."""
    sources = source_fingerprint if also_train_on_fingerprint is None else f"{source_fingerprint}+{also_train_on_fingerprint}"
    return stable_hash([VERSION, weights_digest(model), layer, model.input_size, sources, config.settings()])


def cached_path(cache_dir: str | Path | None, fingerprint: str) -> Path | None:
    """Where ``learn_dictionary`` keeps the dictionary of ``fingerprint`` in ``cache_dir``."""
    return Path(cache_dir) / f"dictionary-{fingerprint}.npz" if cache_dir is not None else None


def collect_vectors(model: Model, source: ImageSource, layer: str, config: DictionaryConfig = DictionaryConfig(), *,
                    runner: Runner | None = None) -> Vectors:
    """``layer``'s activation vectors over ``source`` (every position, or ``config.positions``)."""
    accumulator = ActivationVectors(model, layer, config.positions, config.seed)
    stream(source, [accumulator], PassConfig(batch=config.image_batch, workers=0, progress=config.progress),
           runner=runner, what=f"vectors {accumulator.layer}")
    return accumulator.finish()


def quality_report(model: Model, dictionary: Dictionary, training: Vectors, heldout: Vectors, heldout_source: ImageSource,
                   config: DictionaryConfig, tuning: FineTuning | None = None) -> QualityReport:
    """The report of ``quality`` for ``dictionary`` (trained on ``training`` with ``config``, then
    fine-tuned by ``tuning`` if given: so is the second seed's dictionary)."""
    variance, l0, dead = vector_quality(dictionary, heldout.vectors)
    second = train(training.vectors, dictionary.layer, config, config.seed + 1)
    if tuning is not None:
        second = tuning(second, config.seed + 1)
    agreement, kl = spliced_agreement(model, dictionary, heldout_source, batch=config.image_batch)
    return QualityReport(round(variance, 4), round(l0, 2), round(dead, 4), round(stability(dictionary, second), 4),
                         round(agreement, 4), round(kl, 4), len(heldout), len(heldout_source))


def split(source: ImageSource, holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """(training keys, held-out keys): ``holdout`` of the source's groups, drawn with ``seed``."""
    keys = list(source.keys())
    groups = sorted({source.group(key) for key in keys})
    count = int(round(holdout * len(groups)))
    if holdout > 0 and count == 0 and len(groups) > 1:
        count = 1
    if count >= len(groups) and holdout > 0:
        raise NeuronscopeError(f"holdout {holdout} leaves no training data ({len(groups)} groups in {source.name})")
    chosen = set(np.random.default_rng([seed, 7]).permutation(groups)[:count].tolist())
    return [k for k in keys if source.group(k) not in chosen], [k for k in keys if source.group(k) in chosen]


def _bounded(vectors: Vectors, limit: int, seed: int) -> Vectors:
    """At most ``limit`` vectors (a seeded subsample, in their order)."""
    if len(vectors) <= limit:
        return vectors
    keep = np.zeros(len(vectors), dtype=bool)
    keep[np.random.default_rng([seed, 11]).choice(len(vectors), limit, replace=False)] = True
    return vectors.where(keep)
