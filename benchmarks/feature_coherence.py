"""Are a dictionary's features more coherent than neurons and random directions? Judged by
another model: the top dataset examples of each unit, embedded by Lite1's pooled features.

    .venv/bin/python benchmarks/feature_coherence.py [--layer blocks.4.2] [--top 8] [--units 112]

For Lite0 ``--layer`` over the bundled crops: a dictionary at the defaults (trained as the
``features`` command trains it: the bundled photos and ``data.extra_source()``), its ``--units``
most frequent non-dense features (``frequent_features``: active at most at ``DENSE`` of the positions), the layer's channels (up to
``--units``) and as many random unit directions (seeded). Each unit's ``--top`` images by its
largest response over positions are cropped to the unit's receptive field (as the gallery crops),
embedded by EfficientNet-Lite1 (``global_pool``, another model's view, not the one analysed), and
scored by the mean pairwise cosine of the embeddings. Writes
``benchmarks/results/feature_coherence.json``. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from common import machine

import neuronscope as ns
from neuronscope.dictionaries import Dictionary, DictionaryConfig, collect_vectors, learn_dictionary
from neuronscope.dictionaries.config import DENSE
from neuronscope.dictionaries.features import feature_examples
from neuronscope.dictionaries.rates import firing_rates, frequent_features
from neuronscope.examples.topk import example_crop
from neuronscope.manifest import write_json


def linear_units(layer: str, directions: torch.Tensor) -> Dictionary:
    """Directions (U, C) as a 'dictionary' whose pre-activations are the dot products."""
    units, channels = directions.shape
    zeros = torch.zeros
    return Dictionary(layer, "nmf", None, zeros(channels), 1.0, directions, zeros(units), directions.clamp_min(0), zeros(channels))


def coherence(model, judge, source, dictionary, vectors, units, top) -> list[float]:
    shown = feature_examples(model, dictionary, vectors, units, top=top)
    scores = []
    for examples in shown.examples:
        crops = torch.stack([torch.from_numpy(example_crop(model, source, e, size=judge.input_size[0])).permute(2, 0, 1)
                             for e in examples])
        with torch.no_grad(), ns.capture(judge, ["global_pool"]) as cap:
            embedded = torch.nn.functional.normalize(cap(crops)["global_pool"].flatten(1), dim=1)
        cosine = embedded @ embedded.T
        scores.append(float((cosine.sum() - cosine.diagonal().sum()) / (len(examples) * (len(examples) - 1))))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", default="blocks.4.2")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--units", type=int, default=112)
    parser.add_argument("--out", default="benchmarks/results/feature_coherence.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, judge = ns.load("efficientnet_lite0"), ns.load("efficientnet_lite1")
    source = ns.data.bundled_source()
    config = DictionaryConfig(report=False, progress=False)
    vectors = collect_vectors(model, source, args.layer, config)
    dictionary = learn_dictionary(model, source, args.layer, config, also_train_on=ns.data.extra_source(), vectors=vectors)
    rates = firing_rates(dictionary, vectors.vectors)
    features = frequent_features(rates)[:args.units]
    channels = vectors.vectors.shape[1]
    neurons = list(range(min(args.units, channels)))
    random = torch.nn.functional.normalize(torch.randn(len(neurons), channels, generator=torch.Generator().manual_seed(0)), dim=1)
    report = {"model": model.name, "judge": f"{judge.name} global_pool", "layer": args.layer, "top": args.top,
              **machine(), "torch": torch.__version__, "dictionary": config.settings(),
              "also_train_on": ns.data.extra_source().name, "dense_above": DENSE}
    for name, units, basis in (("features", features, dictionary),
                               ("neurons", neurons, linear_units(args.layer, torch.eye(channels))),
                               ("random directions", list(range(len(neurons))), linear_units(args.layer, random))):
        scores = coherence(model, judge, source, basis, vectors, units, args.top)
        report[name] = {"units": len(scores), "mean_cosine": round(float(np.mean(scores)), 4),
                        "median_cosine": round(float(np.median(scores)), 4)}
        print(name, json.dumps(report[name]), flush=True)
    write_json(args.out, report)


if __name__ == "__main__":
    main()
