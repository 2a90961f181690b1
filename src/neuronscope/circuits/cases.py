"""The cases by which a unit fires: its contribution vectors over many natural images, factored.

    f = firing_cases(model, "blocks.5.0:112", from_layer="blocks.5.0.act2", k=4)   # NMF (or k-means) cases
    f.render(model)                                                                  # one visualization per case

For units fed by 1x1 convolutions, where ``decompose`` has only one cell, this is the view that
separates polysemantic cases.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..capture import capture
from ..errors import NeuronscopeError, did_you_mean
from ..factorization import nmf
from ..featurevis import objectives as obj
from ..featurevis.render import RenderConfig, RenderWarning, Result, render
from ..images import SheetDisplay, save_sheet
from ..manifest import build_manifest, image_name
from ..models.model import Model
from ..overrides import linear_forward
from ..units import Unit
from .checks import check_order, never_negative, spatial_channel
from .decompose import previous_layer

CASE_METHODS = ("nmf", "kmeans")


@dataclass(frozen=True)
class FiringCases:
    """The distinct ways ``unit`` fires: directions over the ``source`` channels in contribution space.

    Render case m with ``direction_neuron(source, d) + weight * direction(source, d)`` (``render``).
    """

    unit: str
    source: str
    method: str
    directions: torch.Tensor
    """(k, C1) each case's contribution pattern (NMF: positive minus negative part; k-means: centroid)."""
    shares: torch.Tensor
    """(k,) each case's share of the unit's summed contributions over the samples, largest first."""
    samples: torch.Tensor
    """(N, C1) the contribution vectors factored: ``a1 * d unit / d a1`` summed over the window."""
    error: float
    """Relative reconstruction error of ``samples`` by the cases."""
    weight: float
    """Weight of the whole-image ``direction`` term when rendering (0.5 for NMF, 0.25 for k-means)."""
    manifest: dict = field(default_factory=dict, repr=False, compare=False)
    """Model, unit, source layer, images, method, k, seed, shares and error (set by ``firing_cases``)."""

    def render(self, model: Model, config: RenderConfig | None = None):
        """One feature visualization per case (a ``Result``, labelled with each case's share).

        A contribution pattern is a direction to push the source activations only where they are
        never negative (a post-ReLU source such as ``blocks.4.0.act2``); otherwise a warning says so."""
        config = config or RenderConfig(steps=256, size=96, progress=False)
        if not never_negative(model, self.source):
            warnings.warn(RenderWarning(f"'{self.source}' takes negative values, so a contribution pattern is not an "
                                        "activation direction; choose a post-ReLU source layer"), stacklevel=2)
        objective = sum(obj.direction_neuron(self.source, d, batch=m) + self.weight * obj.direction(self.source, d, batch=m)
                        for m, d in enumerate(self.directions))
        labels = [f"{self.unit} case {m} ({s:.0%})" for m, s in enumerate(self.shares.tolist())]
        return render(model, objective, config, batch=len(self.directions), labels=labels)

    def __repr__(self) -> str:
        shares = ", ".join(f"{v:.0%}" for v in self.shares.tolist())
        return (f"FiringCases({self.unit} from {self.source}, {len(self.directions)} cases ({self.method}): {shares}; "
                f"{len(self.samples)} samples, error {self.error:.2f})")

    def explain(self, model: Model, config: RenderConfig | None = None) -> ExplainedCases:
        """The cases rendered (``render``), ready to be shown side by side. (The cases alone have no
        cheap picture, so notebooks show their repr.)"""
        config = config or RenderConfig(steps=256, size=96, progress=False)
        rendered = self.render(model, config)
        manifest = build_manifest("firing cases", model=model, **_fields(self), seed=self.manifest.get("seed"),
                                  images=self.manifest.get("images"), render=config)
        return ExplainedCases(self, model.name, rendered, manifest)


@dataclass
class ExplainedCases(SheetDisplay):
    """Firing cases with one feature visualization per case (``FiringCases.explain``)."""

    cases: FiringCases
    model: str
    """The model's name."""
    rendered: Result
    """One feature visualization per case, labelled with its share."""
    manifest: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        c = self.cases
        return f"ExplainedCases({c.unit} from {c.source}, {len(c.directions)} cases rendered)"

    def sheet(self) -> Image.Image:
        """The cases side by side, titled with the method and error."""
        c = self.cases
        method = "NMF" if c.method == "nmf" else "k-means"
        title = (f"{self.model}: {c.unit} from {c.source}, {method} of contributions over "
                 f"{len(c.samples)} images (error {c.error:.2f})")
        return self.rendered.sheet(columns=len(c.directions), title=title)

    def save(self, path: str | Path) -> Path:
        """``sheet()`` as a PNG at ``path`` and the manifest beside it (.json)."""
        return save_sheet(path, self.sheet(), self.manifest)


def firing_cases(model: Model, unit: str, images: Sequence | torch.Tensor | None = None, from_layer: str | None = None,
                 k: int = 4, method: str = "nmf", seed: int = 0, chunk: int = 16) -> FiringCases:
    """Factor the contribution vectors of ``unit`` from ``from_layer`` (default ``previous_layer``)
    over many natural images into k cases.

    For each image (default: the 209 bundled photo crops, ``data.photo_crops``), the unit is taken
    where it fires most and its contributions ``a1 * d unit / d a1`` (linearized, as in
    ``contributions``) are summed over the window, giving one vector ``r`` over the source channels.
    ``nmf``: one-sided NMF of ``[max(0, r), max(0, -r)]``. ``kmeans``: k-means of the rows in the upper
    half by total contribution, each scaled by ``1 / sqrt(eps + |r|^2)`` (eps = 0.1 x the median
    ``|r|^2``, so that direction, not size, decides the cluster). For units fed by 1x1 convolutions,
    where ``decompose`` has only one cell, this is the view that separates polysemantic cases.
    """
    if method not in CASE_METHODS:
        raise NeuronscopeError(f"unknown method '{method}': {did_you_mean(method, CASE_METHODS)} (choose nmf or kmeans)")
    target = spatial_channel(model, unit)
    source = model.spatial_layer(from_layer).name if from_layer is not None else previous_layer(model, target.layer)
    check_order(model, source, target.layer)
    batch = _image_batch(model, images)
    if not 1 <= k <= min(len(batch), model.layer(source).channels):
        raise NeuronscopeError(f"k must be in 1..{min(len(batch), model.layer(source).channels)} here, got {k}")
    samples = torch.cat([summed_contributions(model, target, batch[i : i + chunk], source)
                         for i in range(0, len(batch), chunk)])
    if method == "nmf":
        directions, shares, error = _nmf_cases(samples, k, seed)
    else:
        directions, shares, error = _kmeans_cases(samples, k, seed)
    order = shares.argsort(descending=True)
    cases = FiringCases(str(target), source, method, directions[order], shares[order], samples, error,
                        0.5 if method == "nmf" else 0.25)
    return replace(cases, manifest=build_manifest("firing cases", model=model, **_fields(cases), seed=seed,
                                                   images=_images_name(images)))


def summed_contributions(model: Model, target: Unit, x: torch.Tensor, source: str) -> torch.Tensor:
    """(N, C1): for each image of ``x``, the contributions ``a1 * d unit / d a1`` (linearized network)
    of the ``source`` channels to ``target`` where it fires most, summed over positions."""
    return contributions_to_channels(model, target.layer, [target.channel], x, source)[0]


def contributions_to_channels(model: Model, layer: str, channels: Sequence[int], x: torch.Tensor,
                              source: str) -> torch.Tensor:
    """(K, N, C1): ``summed_contributions`` to each of ``channels`` of ``layer``, from one plain
    and one linearized forward pass shared by all of them (one backward pass per channel)."""
    if not channels:
        raise NeuronscopeError(f"no channels of '{layer}' to measure contributions to")
    with torch.no_grad(), capture(model, [source, layer]) as cap:
        acts = cap(x)
    a1, later = acts[source], acts[layer]
    items = torch.arange(len(x))
    with linear_forward(model.module), torch.enable_grad():
        leaf = a1.detach().clone().requires_grad_(True)
        with capture(model, [source, layer], replace={source: lambda out: leaf}) as cap:
            linear = cap(x)[layer]
        found = []
        for k, c in enumerate(channels):
            where = later[:, c].flatten(1).argmax(1)
            rows, cols = where // later.shape[3], where % later.shape[3]
            values = linear[items, c, rows, cols]
            # items are independent: one backward gives every image's gradient
            (grad,) = torch.autograd.grad(values.sum(), leaf, retain_graph=k < len(channels) - 1)
            found.append((a1 * grad).sum((2, 3)).detach().cpu())
    return torch.stack(found)


def _fields(cases: FiringCases) -> dict:
    return {"unit": cases.unit, "source": cases.source, "method": cases.method, "k": len(cases.directions),
            "shares": cases.shares.tolist(), "error": cases.error, "samples": len(cases.samples)}


def _images_name(images) -> str | list[str]:
    if images is None:
        return "the bundled photo crops (data.photo_crops)"
    if isinstance(images, torch.Tensor):
        return f"a batch of {len(images)} images given in Python"
    return [image_name(image) for image in images]


def _nmf_cases(samples: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    found = nmf(samples, k, negatives="split", seed=seed)
    loadings = torch.from_numpy(found.loadings).float()  # (N, k)
    components = torch.from_numpy(found.components).float()
    channels = samples.shape[1]
    directions = components[:, :channels] - components[:, channels:]
    shares = loadings.sum(0) * directions.sum(1) / samples.sum().clamp(min=1e-12)
    return directions, shares, found.error


def _kmeans_cases(samples: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    from sklearn.cluster import KMeans

    totals = samples.sum(1)
    kept = samples[totals >= totals.median()]
    if len(kept) < k:
        raise NeuronscopeError(f"only {len(kept)} strong samples for k = {k} clusters; give more images")
    squared = kept.pow(2).sum(1, keepdim=True)
    scaled = (kept / (0.1 * squared.median() + squared).sqrt()).double().numpy()
    fitted = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(scaled)
    labels = torch.from_numpy(fitted.labels_)
    kept_totals = kept.sum(1)
    shares = torch.stack([kept_totals[labels == m].sum() for m in range(k)]) / kept_totals.sum()
    error = float(np.sqrt(fitted.inertia_) / max(np.linalg.norm(scaled), 1e-12))
    return torch.from_numpy(fitted.cluster_centers_).float(), shares.float(), error


def _image_batch(model: Model, images) -> torch.Tensor:
    if images is None:
        from ..data.photos import photo_crops

        images = [crop for _, crop in photo_crops()]
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        return images.to(model.device, model.dtype)
    if len(images) == 0:
        raise NeuronscopeError("no images given")
    return torch.cat([model.input(image) for image in images])
