"""Dictionary quality and cost on Lite0 over the bundled photos, photos held out of training.

    .venv/bin/python benchmarks/dictionaries.py [--layers blocks.4.2,blocks.5.3] [--ks 8,16,32,64]

For each layer: every k of ``--ks`` and the defaults (``DictionaryConfig()``), each learned by
``learn_dictionary`` (one pass over the 330 crops, 2 of the 11 photos held out, a second seed for
stability, the spliced model on the held-out images). Writes the quality report, the seconds and
the process's peak memory of each to ``benchmarks/results/dictionaries.json``. A measurement, not
a test.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import replace

import torch
from common import machine

import neuronscope as ns
from neuronscope.dictionaries import DictionaryConfig, learn_dictionary
from neuronscope.manifest import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default="blocks.4.2,blocks.5.3")
    parser.add_argument("--ks", default="8,16,32,64")
    parser.add_argument("--out", default="benchmarks/results/dictionaries.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    source = ns.data.bundled_source()
    defaults = DictionaryConfig(progress=False)
    report = {"model": model.name, "source": source.name, **machine(), "torch": torch.__version__,
              "defaults": defaults.settings(), "runs": []}
    for layer in args.layers.split(","):
        configs = [("default", defaults)] + [(f"k={k}", replace(defaults, k=int(k))) for k in args.ks.split(",")]
        for name, config in configs:
            if name != "default" and config == defaults:
                continue
            start = time.perf_counter()
            dictionary = learn_dictionary(model, source, layer, config)
            seconds = time.perf_counter() - start
            run = {"layer": layer, "setting": name, "k": config.k, "features": dictionary.features,
                   "training_vectors": dictionary.manifest["training_vectors"], "seconds": round(seconds, 1),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                   **dictionary.manifest["quality"]}
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
            write_json(args.out, report)


if __name__ == "__main__":
    main()
