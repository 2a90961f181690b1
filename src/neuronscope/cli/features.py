"""The ``features`` command: learn a dictionary of features at one layer, report its quality and
draw its most frequent features (visualization beside dataset examples)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.resolve import resolve_source
from ..dictionaries import DictionaryConfig, collect_vectors, learn_dictionary
from ..dictionaries.config import KINDS
from ..dictionaries.features import feature_examples, feature_sheet, firing_rates, render_features
from ..featurevis.render import RenderConfig
from ..images import save_sheet
from ..manifest import derived_manifest, write_json
from .common import SOURCE_HELP, load_model, model_argument, no_progress

DENSE = 0.5
"""Features active at more than this fraction of positions are dense (bias-like directions that
fire nearly everywhere); the sheet shows the most frequent of the others."""


def add_commands(commands) -> None:
    """Add ``features`` to the CLI's subcommands."""
    defaults = DictionaryConfig()
    cmd = commands.add_parser("features", help="learn a dictionary of features (TopK sparse autoencoder or NMF) at a layer; "
                                               "report its quality and draw its features")
    model_argument(cmd)
    cmd.add_argument("layer", metavar="LAYER", help="a layer with a spatial grid, like blocks.4.2")
    cmd.add_argument("--source", default=None, help=SOURCE_HELP)
    cmd.add_argument("--size", type=int, default=None, metavar="N",
                     help=f"features in the dictionary (default {defaults.expansion} x the layer's channels; NMF: channels)")
    cmd.add_argument("--k", type=int, default=defaults.k, help=f"active features per position (TopK; default {defaults.k})")
    cmd.add_argument("--kind", default=defaults.kind, choices=KINDS, help=f"dictionary kind (default {defaults.kind})")
    cmd.add_argument("--epochs", type=int, default=defaults.epochs, help=f"training epochs (TopK; default {defaults.epochs})")
    cmd.add_argument("--show", type=int, default=8, help="features drawn: the most frequent of those active at most at half of the positions (default 8)")
    cmd.add_argument("--steps", type=int, default=256, help="optimization steps per feature visualization (default 256)")
    cmd.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    cmd.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for dictionary.npz, report.json and features.png")
    no_progress(cmd)
    cmd.set_defaults(run=_features)


def _features(args: argparse.Namespace) -> None:
    out = Path(args.out)
    config = DictionaryConfig(kind=args.kind, features=args.size, k=args.k, epochs=args.epochs, seed=args.seed,
                              progress=not args.no_progress)
    source = resolve_source(args.source)
    model = load_model(args)
    vectors = collect_vectors(model, source, args.layer, config)
    dictionary = learn_dictionary(model, source, args.layer, config, cache_dir=out / "_cache", vectors=vectors)
    dictionary.save(out / "dictionary.npz")
    rates = firing_rates(dictionary, vectors.vectors)
    dense = rates > DENSE
    shown = [f for f in rates.argsort(descending=True).tolist() if not dense[f]][:args.show]
    examples = feature_examples(model, dictionary, vectors, shown, top=5)
    rendered = render_features(model, dictionary, shown, RenderConfig(steps=args.steps, seed=args.seed,
                                                                       progress=not args.no_progress))
    write_json(out / "report.json", {"layer": dictionary.layer, "features": dictionary.features,
                                     **dictionary.manifest.get("quality", {}),
                                     "dense_features": int(dense.sum()), "dense_above": DENSE})
    manifest = derived_manifest("features", dictionary.manifest, dictionary=dictionary.manifest, shown=shown,
                                render=rendered.manifest,
                                firing_rates=[round(float(rates[f]), 4) for f in shown])
    sheet = save_sheet(out / "features.png", feature_sheet(model, dictionary, source, examples, rendered, rates), manifest)
    print(json.dumps(dictionary.manifest.get("quality", {})))
    print(sheet)
