"""A dictionary's quality with every bundled photo held out once: cross-validation over photos.

    .venv/bin/python benchmarks/dictionary_folds.py [--layer blocks.4.2] [--k 32] [--finetune-epochs 1]
        [--set expansion=2 ...] [--out FILE]

The quality report of ``learn_dictionary`` holds out 2 of the 11 bundled photos (60 crops): its
spliced top-1 agreement moves by several points between settings whose explained variance and KL
barely differ. Here the 11 photos are split into 5 folds (2, 2, 2, 2 and 3 photos, seeded); for
each fold a dictionary is trained with ``DictionaryConfig``'s defaults on the other photos' crops
plus ``data.extra_source()`` (as the ``features`` command trains), and measured on the fold's
crops, so all 330 crops are held out once. Each dictionary is measured with the encoder's values
as codes and with the codes refitted by least squares (``DictionaryConfig.refit``), and, with
``--finetune-epochs N``, again after N epochs of end-to-end fine-tuning; ``--set name=value``
changes a ``DictionaryConfig`` setting (to measure another recipe the same way). The spliced model is also
run on the fold's *training* crops of the bundled photos (the default setting only): the gap
between the two says how much is generalization to unseen photos. Pooled figures weigh every
vector (explained variance) or crop (top-1, KL) alike. Top-1 agreement is also given by the
original model's *margin* on the crop (its first class's probability minus its second's): on
crops where the model itself hesitates between two classes, any change of the layer can swap them. Writes
``benchmarks/results/dictionary_folds.json``. A measurement, not a test.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch
from common import machine, source_state

import neuronscope as ns
from neuronscope.capture import capture
from neuronscope.data.sources import subset
from neuronscope.dictionaries import DictionaryConfig
from neuronscope.dictionaries.finetune import FineTuning
from neuronscope.dictionaries.learn import collect_vectors
from neuronscope.dictionaries.quality import spliced_agreement
from neuronscope.dictionaries.train import train
from neuronscope.manifest import write_json
from neuronscope.names import LOGITS

MARGINS = (0.0, 0.05, 0.2, 1.01)
"""Bins of the original model's margin (top-1 minus top-2 probability) for top-1 agreement."""


def folds(groups: list[str], count: int, seed: int) -> list[list[str]]:
    """``groups`` in ``count`` seeded folds of near-equal size."""
    order = [str(g) for g in np.random.default_rng(seed).permutation(groups)]
    return [order[i::count] for i in range(count)]


def sums(dictionary, vectors: torch.Tensor) -> dict:
    """Squared error, total variance about the fold's mean, active codes and vectors (to pool)."""
    with torch.no_grad():
        codes = dictionary.encode(vectors)
        error = float((vectors.double() - dictionary.decode(codes).double()).pow(2).sum())
    total = float((vectors.double() - vectors.double().mean(0)).pow(2).sum())
    return {"error": error, "total": total, "active": int((codes != 0).sum()), "vectors": len(vectors),
            "fired": (codes != 0).any(0)}


def measure(model, dictionary, vectors: torch.Tensor, images) -> dict:
    counts = sums(dictionary, vectors)
    top1, kl = spliced_agreement(model, dictionary, images)
    fired = counts.pop("fired")
    return {**counts, "explained_variance": round(1 - counts["error"] / counts["total"], 4),
            "l0": round(counts["active"] / counts["vectors"], 2), "dead_fraction": round(1 - float(fired.float().mean()), 4),
            "top1_agreement": round(top1, 4), "kl": round(kl, 4), "images": len(images),
            "agree": round(top1 * len(images)), "kl_sum": kl * len(images)}


def margins_and_agreement(model, candidates: dict, images, batch: int = 16) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The original model's margin on each crop of ``images``, and whether each candidate
    dictionary's spliced model agrees with its top-1 there."""
    keys = list(images.keys())
    margins, agree = [], {name: [] for name in candidates}
    for start in range(0, len(keys), batch):
        x = torch.cat([model.prepare(images.load(key)) for key in keys[start:start + batch]])
        with torch.no_grad():
            with capture(model, [LOGITS]) as cap:
                original = cap(x)[LOGITS].softmax(1)
            top = original.topk(2, dim=1).values
            margins.append((top[:, 0] - top[:, 1]).numpy())
            for name, dictionary in candidates.items():
                with capture(model, [dictionary.layer, LOGITS], replace={dictionary.layer: dictionary.reconstruct}) as cap:
                    agree[name].append((cap(x)[LOGITS].argmax(1) == original.argmax(1)).numpy())
    return np.concatenate(margins), {name: np.concatenate(rows) for name, rows in agree.items()}


def by_margin(margins: np.ndarray, agree: np.ndarray) -> list[dict]:
    rows = []
    for low, high in zip(MARGINS[:-1], MARGINS[1:]):
        inside = (margins >= low) & (margins < high)
        rows.append({"margin": f"{low}-{min(high, 1.0)}", "images": int(inside.sum()),
                     "top1_agreement": round(float(agree[inside].mean()), 4) if inside.any() else None})
    return rows


def pooled(rows: list[dict]) -> dict:
    images = sum(r["images"] for r in rows)
    return {"explained_variance": round(1 - sum(r["error"] for r in rows) / sum(r["total"] for r in rows), 4),
            "l0": round(sum(r["active"] for r in rows) / sum(r["vectors"] for r in rows), 2),
            "dead_fraction_mean": round(float(np.mean([r["dead_fraction"] for r in rows])), 4),
            "top1_agreement": round(sum(r["agree"] for r in rows) / images, 4),
            "top1_standard_error": round(float(np.sqrt(max(1e-12, (p := sum(r["agree"] for r in rows) / images) * (1 - p) / images))), 4),
            "kl": round(sum(r["kl_sum"] for r in rows) / images, 4), "images": images,
            "explained_variance_per_fold": [r["explained_variance"] for r in rows],
            "top1_per_fold": [r["top1_agreement"] for r in rows]}


def settings(pairs: list[str]) -> dict:
    """``name=value`` pairs as DictionaryConfig settings, each value of its default's type."""
    defaults = DictionaryConfig().settings()
    chosen = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in defaults or defaults[name] is None:
            raise SystemExit(f"--set: '{name}' is not a DictionaryConfig setting with a default value: {', '.join(defaults)}")
        kind = type(defaults[name])
        chosen[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layer", default="blocks.4.2")
    parser.add_argument("--k", type=int, default=None, help="default: DictionaryConfig's k for the layer")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a DictionaryConfig setting, e.g. expansion=2 or lr=0.002")
    parser.add_argument("--out", default="benchmarks/results/dictionary_folds.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    source, extra = ns.data.bundled_source(), ns.data.extra_source()
    config = replace(DictionaryConfig(progress=False), k=args.k, **settings(args.set))
    everything = collect_vectors(model, source, args.layer, config)
    extra_vectors = collect_vectors(model, extra, args.layer, config).vectors
    vector_groups = np.array([source.group(str(key)) for key in everything.keys])
    groups = sorted({source.group(key) for key in source.keys()})
    variants: dict[str, list[dict]] = {}
    crops: dict[str, list[np.ndarray]] = {}  # per held-out crop: the original's margin, each variant's agreement
    report = {"model": model.name, "layer": args.layer, "k": config.active(everything.vectors.shape[1]),
              "source": "bundled photos (11 photos, 330 crops), every photo held out once",
              "also_train_on": extra.name, **machine(), **source_state(), "torch": torch.__version__,
              "settings": config.settings(), "folds": [], "pooled": {}}
    for held in folds(groups, args.folds, seed=5):
        start = time.perf_counter()
        heldout = np.isin(vector_groups, held)
        dictionary = train(torch.cat([everything.vectors[torch.from_numpy(~heldout)], extra_vectors]), args.layer, config,
                           config.seed)
        fold = {"held_out": held, "training_s": round(time.perf_counter() - start, 1), "variants": {}}
        held_keys = [key for key in source.keys() if source.group(key) in held]
        train_keys = [key for key in source.keys() if source.group(key) not in held]
        held_images = subset(source, held_keys, "held out")
        candidates = {"encoder codes": replace(dictionary, refit=False), "refitted codes": replace(dictionary, refit=True)}
        if args.finetune_epochs:
            start = time.perf_counter()
            tuning = FineTuning(model, [(source, train_keys), (extra, extra.keys())],
                                replace(config, finetune_epochs=args.finetune_epochs))
            tuned = tuning(dictionary, config.seed)
            fold["finetune_s"] = round(time.perf_counter() - start, 1)
            candidates.update({f"fine-tuned {args.finetune_epochs}, encoder codes": replace(tuned, refit=False),
                               f"fine-tuned {args.finetune_epochs}, refitted codes": replace(tuned, refit=True)})
        margins, agreement = margins_and_agreement(model, candidates, held_images)
        crops.setdefault("margin", []).append(margins)
        for name, candidate in candidates.items():
            crops.setdefault(name, []).append(agreement[name])
            row = measure(model, candidate, everything.vectors[torch.from_numpy(heldout)], held_images)
            variants.setdefault(name, []).append(row)
            fold["variants"][name] = {k: v for k, v in row.items() if k not in ("error", "total", "active", "kl_sum")}
        default = replace(dictionary, refit=DictionaryConfig().refit)
        top1, kl = spliced_agreement(model, default, subset(source, train_keys, "training"))
        fold["training_photos_spliced"] = {"top1_agreement": round(top1, 4), "kl": round(kl, 4), "images": len(train_keys)}
        report["folds"].append(fold)
        report["pooled"] = {name: {**pooled(rows), "by_margin": by_margin(np.concatenate(crops["margin"]),
                                                                           np.concatenate(crops[name]))}
                            for name, rows in variants.items()}
        print(json.dumps({"held_out": held, **{n: (v["explained_variance"], v["top1_agreement"], v["kl"])
                                                for n, v in fold["variants"].items()}}), flush=True)
        write_json(args.out, report)
    training = [f["training_photos_spliced"] for f in report["folds"]]
    report["training_photos_pooled"] = {
        "top1_agreement": round(sum(t["top1_agreement"] * t["images"] for t in training) / sum(t["images"] for t in training), 4),
        "kl": round(sum(t["kl"] * t["images"] for t in training) / sum(t["images"] for t in training), 4)}
    write_json(args.out, report)
    print(json.dumps(report["pooled"], indent=1))


if __name__ == "__main__":
    main()
