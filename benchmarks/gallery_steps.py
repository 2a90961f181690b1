"""The gallery's render settings: steps and learning-rate schedule, time against picture quality.

    .venv/bin/python benchmarks/gallery_steps.py [--variants a,b] [--out benchmarks/results/gallery_steps.json]

Renders the README main job's units (Lite0's 6 gallery layers x their first 6 channels, 3 samples
pushed apart by the gallery's diversity term, 128 px) once per variant, in one process, and
records per variant:

* seconds of the render (wall, 2 threads);
* each unit's activation (its score on the untransformed final images, mean of the samples) as a
  fraction of the reference variant's (the gallery's defaults before: 128 steps, constant rate);
* crop/rescale robustness of every image (``featurevis.robustness``: the unit's score over 8 random
  crops of 60-100 % of the side, as a fraction of its score on the image);
* the visualization-based two-choice interpretability score (``ns.interpretability`` with the
  images as the strong references; Lite2 judges; uncalibrated) per unit, and its mean;
* a contact sheet of the first sample of every unit (``--sheets DIR``) to look at.

``--part caricatures`` measures the photo pages' caricatures instead: for each of
``CARICATURE_STEPS``, the seconds of the caricatures of 3 photos through the 6 gallery layers (as
the photo page makes them) and each layer's cosine between the caricature's and the photo's
activations (the caricature objective's own measure; 1 = the layer sees the same).
``--part photo_pictures``: the photo pages' other renders, the semantic dictionary's channel icons
(64 px; all 3 photos' channels in one batch) and the neuron groups' pictures (96 px; 4 groups at
each of the two deepest layers per photo), at each of ``PICTURE_STEPS``: seconds and each
picture's objective as a fraction of the most steps'.

A measurement, never a test. Run it on an idle machine: the times are wall clock.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import machine  # noqa: E402

import neuronscope as ns  # noqa: E402
from neuronscope.data.sources import bundled_source  # noqa: E402
from neuronscope.featurevis.render import DEFAULT_DIVERSITY_WEIGHT, RenderConfig  # noqa: E402
from neuronscope.featurevis.robustness import crop_robustness  # noqa: E402
from neuronscope.images import contact_sheet  # noqa: E402
from neuronscope.interpretability import ScoreConfig, Similarity, similarity_model_name  # noqa: E402
from neuronscope.manifest import write_json  # noqa: E402
from neuronscope.models.depth import representative_layers  # noqa: E402
from neuronscope.units import parse_unit, unit_score  # noqa: E402

UNITS_PER_LAYER = 6
SAMPLES = 3
VARIANTS = {
    "constant_128": {"steps": 128},
    "constant_96": {"steps": 96},
    "constant_64": {"steps": 64},
    "cosine_96": {"steps": 96, "schedule": "cosine"},
    "cosine_64": {"steps": 64, "schedule": "cosine"},
}
REFERENCE = "constant_128"
CARICATURE_STEPS = (64, 48, 32)
PHOTOS = ("chelsea", "coffee", "rocket")
PICTURE_STEPS = (96, 64, 48)


def photo_pictures(model: ns.Model, layers: list[str]) -> dict:
    """Seconds and objective values of the dictionary icons and group pictures at each step count."""
    from neuronscope.attribution.dictionary import dictionary_channels
    from neuronscope.attribution.groups import neuron_groups
    from neuronscope.data.photos import load_image
    from neuronscope.featurevis.render import render
    from neuronscope.gallery.photo_interface import GROUP_PICTURE, GROUPS, groups_objective, hover_layers
    from neuronscope.gallery.photo_views import ICON_SIZE, dictionary_layer, read_photo

    deepest = dictionary_layer(model, layers)
    images = {photo: load_image(photo) for photo in PHOTOS}
    icons = sorted({c for image in images.values() for c in dictionary_channels(model, image, deepest, top=1)})
    grouped = [layer for layer in hover_layers(model, layers) if layer not in model.derived][-2:]
    sets = []
    for image in images.values():
        reading = read_photo(model, image, grouped)
        sets += [neuron_groups(model, reading, layer, k=GROUPS) for layer in grouped]
    objective, count = groups_objective(sets)
    rows, first = {}, {}
    for steps in PICTURE_STEPS:
        row = {}
        start = time.perf_counter()
        values = ns.render_units(model, [f"{deepest}:{c}" for c in icons],
                                 RenderConfig(steps=steps, size=ICON_SIZE, progress=False)).values
        row["icons_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        group_values = render(model, objective, RenderConfig(steps=steps, size=GROUP_PICTURE, progress=False),
                              batch=count).values
        row["groups_s"] = round(time.perf_counter() - start, 1)
        first = first or {"icons": values, "groups": group_values}
        for name, found in (("icons", values), ("groups", group_values)):
            ratio = (found / first[name]).tolist()
            row[f"{name}_over_{PICTURE_STEPS[0]}_steps"] = {"median": round(statistics.median(ratio), 3),
                                                            "min": round(min(ratio), 3)}
        rows[str(steps)] = row
        print(f"photo pictures at {steps} steps: {row}", flush=True)
    return {"icons": {"layer": deepest, "channels": icons}, "groups": {"layers": grouped, "pictures": count},
            "steps": rows}


def caricature_steps(model: ns.Model, layers: list[str]) -> dict:
    """Seconds and per-layer similarity of the photo pages' caricatures at each step count."""
    from neuronscope.data.photos import load_image
    from neuronscope.gallery.photo_views import _caricatures

    rows = {}
    for steps in CARICATURE_STEPS:
        start, similarity = time.perf_counter(), []
        for photo in PHOTOS:
            similarity.append([round(float(s), 4) for s in _caricatures(model, load_image(photo), layers, steps).similarity])
        seconds = time.perf_counter() - start
        rows[str(steps)] = {"seconds": round(seconds, 1), "similarity": dict(zip(PHOTOS, similarity)),
                            "mean_per_layer": {layer: round(statistics.fmean(s[i] for s in similarity), 4)
                                               for i, layer in enumerate(layers)}}
        print(f"caricatures at {steps} steps: {seconds:.1f} s, {rows[str(steps)]['mean_per_layer']}", flush=True)
    return rows


def scores(model: ns.Model, images: torch.Tensor, units: list[str]) -> list[float]:
    """Each unit's score on its samples' untransformed images, mean over the samples."""
    parsed = [parse_unit(model, u) for u in units]
    layers = sorted({u.layer for u in parsed})
    with torch.no_grad(), ns.capture(model, layers) as cap:
        acts = cap(images.to(model.device, model.dtype))
    return [statistics.fmean(float(unit_score(acts, u, j * SAMPLES + s)) for s in range(SAMPLES))
            for j, u in enumerate(parsed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", choices=["units", "caricatures", "photo_pictures"], default="units")
    parser.add_argument("--sheets", default=None, help="write a contact sheet per variant into this folder")
    parser.add_argument("--out", default=str(HERE / "results" / "gallery_steps.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    if REFERENCE not in names:
        names.insert(0, REFERENCE)
    report = {"benchmark": "gallery_steps", "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **machine(), "threads": args.threads, "torch": torch.__version__}
    model = ns.load("efficientnet_lite0")
    layers = representative_layers(model)
    if args.part != "units":
        measure = caricature_steps if args.part == "caricatures" else photo_pictures
        report.update({"model": model.name, "layers": layers, "photos": list(PHOTOS), args.part: measure(model, layers)})
        write_json(Path(args.out), report)
        return
    units = [f"{layer}:{c}" for layer in layers for c in range(UNITS_PER_LAYER)]
    source = bundled_source()
    score_config = ScoreConfig(progress=False)
    judge = Similarity(ns.load(similarity_model_name(model.name, score_config)), score_config.similarity_size,
                       batch=score_config.batch)
    ns.render_units(model, units[:2], RenderConfig(steps=2, progress=False))  # warm-up
    rows = {}
    for name in names:
        config = RenderConfig(progress=False, **VARIANTS[name])
        start = time.perf_counter()
        result = ns.render_units(model, units, config, samples=SAMPLES, diversity=DEFAULT_DIVERSITY_WEIGHT)
        seconds = time.perf_counter() - start
        activation = scores(model, result.images, units)
        robust = crop_robustness(model, result.images, [u for u in units for _ in range(SAMPLES)])
        pictures = {u: result.images[j * SAMPLES:(j + 1) * SAMPLES] for j, u in enumerate(units)}
        verdicts = ns.interpretability(model, source, units, score_config, visualizations=pictures, judge=judge)
        visual = [verdicts[u].visual_score for u in units]
        rows[name] = {"settings": VARIANTS[name], "render_s": round(seconds, 1), "activation": activation,
                      "robustness_median": round(statistics.median(robust), 3),
                      "robustness": [round(r, 3) for r in robust], "visual_score": visual,
                      "visual_score_mean": round(statistics.fmean(v for v in visual if v is not None), 4)}
        if args.sheets:
            Path(args.sheets).mkdir(parents=True, exist_ok=True)
            sheet = contact_sheet(list(result.images[::SAMPLES]), units, columns=UNITS_PER_LAYER,
                                  title=f"{name}: {seconds:.0f} s")
            sheet.save(Path(args.sheets) / f"{name}.png")
        print(f"{name}: {seconds:.1f} s, visual score {rows[name]['visual_score_mean']:.3f}, "
              f"robustness {rows[name]['robustness_median']:.3f}", flush=True)
    reference = rows[REFERENCE]
    for name, row in rows.items():
        ratio = [a / r if r > 0 else None for a, r in zip(row["activation"], reference["activation"])]
        per_layer = {layer: round(statistics.median(x for x in ratio[i * UNITS_PER_LAYER:(i + 1) * UNITS_PER_LAYER]
                                                    if x is not None), 3) for i, layer in enumerate(layers)}
        row["activation_over_reference_median_per_layer"] = per_layer
        row["time_over_reference"] = round(row["render_s"] / reference["render_s"], 3)
        row["activation"] = [round(a, 3) for a in row["activation"]]
    report.update({"model": model.name, "layers": layers, "units": units, "samples": SAMPLES,
                   "diversity": DEFAULT_DIVERSITY_WEIGHT, "reference": REFERENCE, "variants": rows})
    write_json(Path(args.out), report)
    print(json.dumps({k: {x: v[x] for x in ("render_s", "time_over_reference", "visual_score_mean",
                                            "robustness_median", "activation_over_reference_median_per_layer")}
                      for k, v in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
