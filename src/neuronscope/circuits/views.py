"""One unit seen through three objectives: neuron, channel and cosine-weighted direction."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, Result, render
from ..images import SheetDisplay, save_sheet
from ..manifest import build_manifest
from ..models.model import Model
from .checks import spatial_channel


@dataclass
class ObjectiveViews(SheetDisplay):
    """A unit rendered three ways (``objective_views``)."""

    unit: str
    model: str
    """The model's name."""
    rendered: Result
    """The neuron, channel and direction x cos views, in that order."""
    manifest: dict = field(default_factory=dict, repr=False)

    @property
    def images(self) -> torch.Tensor:
        return self.rendered.images

    @property
    def labels(self) -> list[str]:
        return self.rendered.labels

    def __repr__(self) -> str:
        return f"ObjectiveViews({self.unit}: neuron, channel, direction x cos)"

    def sheet(self) -> Image.Image:
        """The three views side by side, titled with the model and unit."""
        return self.rendered.sheet(columns=3, title=f"{self.model}: {self.unit} as neuron, channel and direction x cos")

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)


def objective_views(model: Model, unit: str, config: RenderConfig | None = None) -> ObjectiveViews:
    """A unit three ways, side by side: its neuron at the centre, its whole channel, and the
    cosine-weighted direction of its channel (``dot * max(0.1, cos)``), which asks for inputs where
    this channel dominates the activation vector rather than merely being large."""
    config = config or RenderConfig()
    parsed = spatial_channel(model, unit)
    basis = torch.zeros(model.layer(parsed.layer).channels)
    basis[parsed.channel] = 1.0
    objective = (obj.neuron(parsed.layer, parsed.channel, batch=0) + obj.channel(parsed.layer, parsed.channel, batch=1)
                 + obj.direction(parsed.layer, basis, cosine_power=1.0, batch=2))
    labels = [f"{parsed} neuron", f"{parsed} channel", f"{parsed} direction x cos"]
    rendered = render(model, objective, config, batch=3, labels=labels)
    manifest = build_manifest("objective views", model=model, unit=str(parsed), labels=rendered.labels,
                              values=rendered.values.tolist(), render=config)
    return ObjectiveViews(str(parsed), model.name, rendered, manifest)
