"""Render the "Decomposed feature visualization" pictures of docs/circuits.md (PNGs + manifests in
docs/images/; several minutes on 2 cores).

    .venv/bin/python scripts/make_mechanics_docs.py
"""
from __future__ import annotations

from pathlib import Path

import torch

import neuronscope as ns
from neuronscope import objectives as obj
from neuronscope.circuits.cases import firing_cases
from neuronscope.circuits.decompose import MechanicsConfig, contributions, decompose
from neuronscope.circuits.expanded import expanded_weights
from neuronscope.circuits.factors import weight_factors
from neuronscope.featurevis.render import RenderConfig, render
from neuronscope.images import contact_sheet, save_png
from neuronscope.manifest import build_manifest, write_json

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
CONFIG = MechanicsConfig(render=RenderConfig(steps=192, size=56, progress=False))
UNITS = [  # (unit, photo it fires on): two around blocks.4.0 (from blocks.3.2), two around blocks.5.0 (from blocks.4.2)
    ("blocks.4.0:48", "chelsea"), ("blocks.4.0:96", "coffee"), ("blocks.5.0:34", "chelsea"), ("blocks.5.0:187", "motorcycle"),
]


def main() -> None:
    torch.set_num_threads(2)
    model = ns.load("efficientnet_lite0")
    for unit, photo in UNITS:
        parts = decompose(model, unit, config=CONFIG)
        explained = contributions(model, unit, photo, parts.source)
        name = f"mechanics_{unit.replace(':', '_')}"
        parts.save(IMAGES / f"{name}.png", explained.explain(model, CONFIG))
        print(name, explained.unit, f"bias {explained.bias:.2f} + {float(explained.values.sum()):.2f} = {explained.linearized:.2f}")
    methods(model)
    cases(model)
    factors(model)


def methods(model: ns.Model) -> None:
    """Method A beside Method B for one unit."""
    unit = UNITS[0][0]
    a = decompose(model, unit, config=CONFIG)
    b = decompose(model, unit, config=MechanicsConfig(method="optimize", render=CONFIG.render))
    agreement = float(torch.nn.functional.cosine_similarity(a.vectors.flatten(), b.vectors.flatten(), dim=0))
    save_png(IMAGES / "mechanics_methods.png", contact_sheet(
        [a.target, a.grid(), b.grid()], [f"{unit} (neuron)", "A: expanded weights", f"B: optimized {a.source} (cos {agreement:.2f})"],
        columns=3, cell=a.grid().shape[-1], title=f"{model.name}: {unit} from {a.source}, Method A and Method B"))
    write_json(IMAGES / "mechanics_methods.json", build_manifest(
        "decomposition methods", model=model.name, unit=unit, source=a.source, cosine_a_b=agreement, config=CONFIG))


def cases(model: ns.Model) -> None:
    """The 1x1 view: how blocks.5.0:112 fires over the bundled photo crops, from its post-ReLU6 expansion."""
    unit, source = "blocks.5.0:112", "blocks.5.0.act2"
    found = firing_cases(model, unit, from_layer=source, k=4)
    rendered = found.render(model, RenderConfig(steps=256, size=96, progress=False))
    own = render(model, obj.channel("blocks.5.0", 112), RenderConfig(steps=256, size=96, progress=False))
    save_png(IMAGES / "mechanics_cases.png", contact_sheet(
        [own.images[0], *rendered.images], [f"{unit} (channel)", *rendered.labels], columns=5,
        title=f"{model.name}: {unit} from {source}, NMF of contributions over {len(found.samples)} photo crops (error {found.error:.2f})"))
    write_json(IMAGES / "mechanics_cases.json", build_manifest(
        "firing cases", model=model.name, unit=unit, source=source, method=found.method, shares=found.shares.tolist(),
        error=found.error, samples=len(found.samples)))
    print("cases", found.shares.tolist(), found.error)


def factors(model: ns.Model) -> None:
    """Weight factors shared by a family of blocks.4.0 units, from blocks.3.2."""
    family = expanded_weights(model, "blocks.4.0", "blocks.3.2")
    units = [48, 96, 17, 3, 60, 89]
    found = weight_factors(family, k=2, outputs=units)
    found.explain(model, RenderConfig(steps=256, size=96, progress=False)).save(IMAGES / "mechanics_weight_factors.png")
    print("factors", found.error)


if __name__ == "__main__":
    main()
