"""The matching pass: each image decoded once, prepared for each model at its own input size,
both models run through ``capture`` (all their layers at once), every map resampled to its
pairs' grids and added to the running float64 sums."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..capture import capture
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..examples.loading import Preparer, batches, default_workers
from ..models.model import Model
from .positions import Grid, resample
from .statistics import Cross, Moments


@dataclass(frozen=True)
class PairPreparer:
    """Both models' preprocessing of one image (picklable, for decoding workers); ``b`` None when
    model B prepares images exactly as model A does (the same input is then used twice)."""

    a: Preparer
    b: Preparer | None

    def __call__(self, image) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.a(image), None if self.b is None else self.b(image)


@dataclass
class Sums:
    """The running sums of a pass: ``moments[(side, layer, grid)]`` (side 0 for A, 1 for B) and
    ``cross[(layer_a, layer_b)]``, with the grid each pair is compared on."""

    grids: dict[tuple[str, str], Grid]
    moments: dict[tuple[int, str, Grid], Moments]
    cross: dict[tuple[str, str], Cross]
    side_b: int = 1
    """The side key of B's moments: 0 when one model is on both sides."""
    images: int = 0

    @classmethod
    def start(cls, grids: dict[tuple[str, str], Grid], channels: Sequence[dict[str, int]], same: bool = False) -> Sums:
        """Empty sums; with ``same`` (one model on both sides) a layer's moments serve both sides."""
        side_b = 0 if same else 1
        moments = {}
        for (a, b), grid in grids.items():
            moments.setdefault((0, a, grid), Moments(channels[0][a]))
            moments.setdefault((side_b, b, grid), Moments(channels[1][b]))
        cross = {(a, b): Cross(moments[(0, a, g)], moments[(side_b, b, g)]) for (a, b), g in grids.items()}
        return cls(grids, moments, cross, side_b)

    def add(self, activations: Sequence[dict[str, torch.Tensor]], device: torch.device) -> None:
        """One batch: ``activations[side][layer]`` (B, C, h, w) of the same images on both sides."""
        centred = {}
        for (side, layer, grid), moments in self.moments.items():
            rows = resample(activations[side][layer].float(), grid).to(device)
            centred[(side, layer, grid)] = moments.centred(rows)
            moments.add(rows, centred[(side, layer, grid)])
        for (a, b), cross in self.cross.items():
            grid = self.grids[(a, b)]
            cross.add(centred[(0, a, grid)], centred[(self.side_b, b, grid)])
        self.images += len(next(iter(activations[0].values())))


def run_pass(models: tuple[Model, Model], layers: tuple[list[str], list[str]], source: ImageSource, sums: Sums,
             batch: int, workers: int | None, progress: bool) -> Sums:
    """Stream ``source`` through both models into ``sums``; unreadable items land in ``source.skipped``."""
    model_a, model_b = models
    same = model_b is model_a
    prep_a = Preparer.of(model_a, model_a.input_size)
    prep_b = Preparer.of(model_b, model_b.input_size)
    prepare = PairPreparer(prep_a, None if prep_b == prep_a else prep_b)
    device = _statistics_device(model_a)
    workers = default_workers(source, batch) if workers is None else workers
    skipped: list[tuple[str, str]] = []
    bar = tqdm(total=len(source), desc=f"compare {model_a.name} / {model_b.name}"[:60], unit="image",
               disable=not progress, leave=False)
    joint = list(dict.fromkeys([*layers[0], *layers[1]]))
    try:
        with torch.no_grad(), ExitStack() as stack:
            cap_a = stack.enter_context(capture(model_a, joint if same else layers[0]))
            cap_b = cap_a if same else stack.enter_context(capture(model_b, layers[1]))
            for items, inputs_a, inputs_b, bad in paired_batches(source, prepare, batch, workers):
                skipped += bad
                bar.update(len(items) + len(bad))
                if not items:
                    continue
                acts_a = cap_a(inputs_a.to(model_a.device, model_a.dtype))
                if same and inputs_b is None:
                    acts_b = acts_a  # one forward pass gives both sides
                else:
                    inputs = inputs_a if inputs_b is None else inputs_b
                    acts_b = cap_b(inputs.to(model_b.device, model_b.dtype))
                sums.add((acts_a, acts_b), device)
    finally:
        bar.close()
        source.skipped = skipped
    if sums.images == 0:
        first = f" (first: {skipped[0][1]})" if skipped else ""
        raise NeuronscopeError(f"no readable image in {source.name}: all {len(skipped)} items failed to load{first}")
    return sums


def _statistics_device(model: Model) -> torch.device:
    """Where the float64 sums live: the model's device, unless it has no float64 (Apple's MPS)."""
    return torch.device("cpu") if model.device.type == "mps" else model.device


def paired_batches(source: ImageSource, prepare: PairPreparer, batch: int,
             workers: int) -> Iterator[tuple[list[str], torch.Tensor | None, torch.Tensor | None, list[tuple[str, str]]]]:
    """(keys, inputs of A, inputs of B or None, skipped (key, reason)) per ``batch`` candidates."""
    return batches(source, prepare, 0, batch, workers, collate=_collate)


def _collate(entries):
    readable = [(key, x) for _, key, x, _ in entries if x is not None]
    bad = [(key, reason) for _, key, x, reason in entries if x is None]
    if not readable:
        return [], None, None, bad
    inputs_a = torch.stack([x[0] for _, x in readable])
    inputs_b = None if readable[0][1][1] is None else torch.stack([x[1] for _, x in readable])
    return [key for key, _ in readable], inputs_a, inputs_b, bad

