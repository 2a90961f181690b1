"""Dictionary quality and cost on Lite0 over the bundled photos, photos held out of training.

    .venv/bin/python benchmarks/dictionaries.py [--layers ...] [--sweep blocks.4.2,blocks.5.3] [--ks 8,16,32,64]
        [--finetune-epochs N] [--merge] [--no-pass]

For each of Lite0's six gallery layers (``representative_layers``) the defaults, and for the
``--sweep`` layers every k of ``--ks`` too, each learned by ``learn_dictionary`` with the CLI's
default training set (the 9 training photos' crops plus ``data.extra_source()``; 2 of the 11
photos held out; a second seed for stability; the spliced model on the held-out images), each in
a process of its own so that its peak memory is its own. Then the activation pass of each layer:
vectors per second, against the same pass whose accumulator keeps nothing (the forward floor).
Writes ``benchmarks/results/dictionaries.json``. A measurement, not a test.

``--finetune-epochs N`` overrides ``DictionaryConfig.finetune_epochs`` (0: the dictionaries as
trained on vectors only, the figures before the end-to-end fine-tuning); each run records the
seconds of its training on vectors and of its fine-tuning (the first seed's; the report's second
seed costs as much again). ``--merge`` keeps the runs of the existing output that this call does
not measure again (same layer, k and fine-tuning epochs); ``--no-pass`` skips the pass timings.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import machine

import neuronscope as ns
from neuronscope.dictionaries import ActivationVectors, DictionaryConfig, learn_dictionary
from neuronscope.manifest import write_json
from neuronscope.models.depth import representative_layers
from neuronscope.stream import PassConfig, Reader, stream


class Floor:
    """An accumulator that reads a layer and keeps nothing: the pass's cost without the vectors."""

    def __init__(self, model, layer: str) -> None:
        reader = Reader.of(model)
        self.reads = {reader: (layer,)}
        self.name = f"floor {layer}"
        self.summarizer = lambda view: None

    def merge(self, partial, items) -> None:
        pass

    def state(self):
        return {}

    def restore(self, arrays) -> None:
        pass


def one(layer: str, k: int | None, finetune_epochs: int | None = None) -> dict:
    """Learn one dictionary (in this process) and return its figures."""
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    config = replace(DictionaryConfig(progress=False), k=k)  # None: the default k of the layer
    if finetune_epochs is not None:
        config = replace(config, finetune_epochs=finetune_epochs)
    start = time.perf_counter()
    dictionary = learn_dictionary(model, ns.data.bundled_source(), layer, config, also_train_on=ns.data.extra_source())
    return {"layer": layer, "channels": dictionary.channels, "k": dictionary.k, "features": dictionary.features, "training_vectors": dictionary.manifest["training_vectors"],
            "training_images": dictionary.manifest["training_images"], "seconds": round(time.perf_counter() - start, 1),
            "finetune_epochs": config.finetune_epochs, "finetune_images": dictionary.manifest["finetune_images"],
            "vector_training_s": dictionary.manifest["training_seconds"]["vectors"],
            "finetune_s": dictionary.manifest["training_seconds"].get("finetune", 0.0),
            **dictionary.manifest["quality"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),  # this process's own
            "cpu": machine()["cpu"]}  # each run's own: --merge keeps runs of other calls


def pass_speed(model, layer: str) -> dict:
    source = ns.data.bundled_source()
    timings = {}
    for name, accumulator in (("floor", Floor(model, layer)), ("vectors", ActivationVectors(model, layer))):
        start = time.perf_counter()
        stream(source, [accumulator], PassConfig(batch=16, workers=0, progress=False), what=name)
        timings[name] = time.perf_counter() - start
        if name == "vectors":
            vectors = len(accumulator.finish())
    return {"layer": layer, "cpu": machine()["cpu"], "vectors": vectors, "vectors_per_s": round(vectors / timings["vectors"]),
            "floor_s": round(timings["floor"], 2), "vectors_s": round(timings["vectors"], 2),
            "ratio_to_floor": round(timings["vectors"] / timings["floor"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=None, help="default: Lite0's six gallery layers")
    parser.add_argument("--sweep", default="blocks.4.2,blocks.5.3")
    parser.add_argument("--ks", default="8,16,32,64")
    parser.add_argument("--finetune-epochs", type=int, default=None, help="default: DictionaryConfig's")
    parser.add_argument("--merge", action="store_true", help="keep the output's runs not measured again")
    parser.add_argument("--no-pass", action="store_true", help="skip the activation pass timings")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # layer:k[:finetune epochs], in a child process
    parser.add_argument("--out", default="benchmarks/results/dictionaries.json")
    args = parser.parse_args()
    if args.one:
        layer, k, *epochs = args.one.split(":")
        print(json.dumps(one(layer, None if k == "default" else int(k), int(epochs[0]) if epochs else None)))
        return
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    layers = args.layers.split(",") if args.layers else representative_layers(model)
    sweep = args.sweep.split(",")
    jobs = [(layer, int(k)) for layer in sweep for k in args.ks.split(",")]
    jobs += [(layer, None) for layer in layers if layer not in sweep]
    report = {"model": model.name, "source": "bundled photos (11 photos, 330 crops), 2 photos held out",
              "also_train_on": ns.data.extra_source().name, **machine(), "torch": torch.__version__,
              "defaults": DictionaryConfig().settings(), "runs": [], "pass": []}
    if args.merge and Path(args.out).exists():
        report = {**json.loads(Path(args.out).read_text()), **{k: v for k, v in report.items() if k not in ("runs", "pass")}}
    epochs = f":{args.finetune_epochs}" if args.finetune_epochs is not None else ""
    for layer, k in jobs:
        done = subprocess.run([sys.executable, __file__, "--one", f"{layer}:{'default' if k is None else k}{epochs}"],
                              check=True, capture_output=True, text=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        defaults = DictionaryConfig()
        run["default"] = run["k"] == defaults.active(run["channels"]) and run["finetune_epochs"] == defaults.finetune_epochs
        same = (run["layer"], run["k"], run["finetune_epochs"])
        report["runs"] = [r for r in report["runs"] if (r["layer"], r["k"], r.get("finetune_epochs", 0)) != same] + [run]
        for other in report["runs"]:  # the defaults may have changed since an older run
            other["default"] = (other["k"] == defaults.active(other["channels"])
                                and other.get("finetune_epochs", 0) == defaults.finetune_epochs)
        print(json.dumps(run), flush=True)
        write_json(args.out, report)
    if args.no_pass:
        return
    report["pass"] = []
    for layer in layers:
        report["pass"].append(pass_speed(model, layer))
        print(json.dumps(report["pass"][-1]), flush=True)
        write_json(args.out, report)


if __name__ == "__main__":
    main()
