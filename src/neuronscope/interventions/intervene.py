"""Interventions: run an image with some units edited and see what changes.

    found = intervene(model, "chelsea", [Ablate("blocks.5.3:17")])
    found.classes()            # the top classes before, with their probabilities after
    found.units("blocks.6.0")  # the units of the next layer that changed most
    print(found.summary())

The image runs once up to the first edited layer; there its output becomes 1 + n rows (the
unedited one, then one per edit set), which the rest of the network runs as a batch, through one
capture that replaces the edited layers' values (derived layers, such as dictionary features,
write their change back into their parent layer). Like ``attribution``'s copies, this relies on
the network treating batch rows independently after that layer (true of CNNs and ViTs in eval
mode; a skip connection from before it broadcasts over the rows).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..attribution.hidden import origin
from ..capture import capture
from ..errors import NeuronscopeError
from ..models.model import Model
from ..names import LOGITS
from .edits import Edit, LayerEdit
from .result import Intervention


def intervene(model: Model, image, edits: Edit | Sequence[Edit], *, downstream: Sequence[str] | None = None,
              size: int | tuple[int, int] | None = None) -> Intervention:
    """Apply ``edits`` (``Ablate``, ``Steer``, ``ScaleGroup``; all at once) to ``image`` (a path, a
    bundled photo, an RGB array or a prepared tensor). ``downstream``: layers whose units' change is
    recorded (default: the shown layer after the deepest edit)."""
    resolved = resolve_edits(model, edits)
    layers = list(downstream) if downstream is not None else next_layers(model, resolved)
    outputs = edited_forward(model, model.input(image, size), [resolved], layers)
    changes = {layer: (_channel_means(outputs[layer][0]), _channel_means(outputs[layer][-1])) for layer in layers}
    logits = outputs.get(LOGITS)
    return Intervention(
        edits=[edit.label for edit in resolved],
        labels=model.labels,
        logits_before=None if logits is None else logits[0].double().cpu().numpy(),
        logits_after=None if logits is None else logits[1].double().cpu().numpy(),
        downstream=changes,
        origin=origin(model, image),
    )


def resolve_edits(model: Model, edits: Edit | Sequence[Edit]) -> list[LayerEdit]:
    """Every edit's ``LayerEdit``s, checked against ``model``, in the order given."""
    given = [edits] if hasattr(edits, "resolve") else list(edits)
    if not given:
        raise NeuronscopeError("intervene needs at least one edit (Ablate, Steer or ScaleGroup)")
    for edit in given:
        if not hasattr(edit, "resolve"):
            raise NeuronscopeError(f"{edit!r} is not an edit: use Ablate, Steer or ScaleGroup")
    return [layer_edit for edit in given for layer_edit in edit.resolve(model)]


def edited_forward(model: Model, inputs: torch.Tensor, edit_sets: Sequence[Sequence[LayerEdit]],
                   layers: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Run one image (``inputs``, (1, C, H, W)) as 1 + len(edit_sets) rows from the first edited
    layer on: row 0 unedited, row r with the edits of ``edit_sets[r - 1]``. Returns the logits (if
    the model has classes) and ``layers``, each (1 + len(edit_sets), ...) (a layer before the first
    edit: one row)."""
    if inputs.shape[0] != 1:
        raise NeuronscopeError(f"edited_forward runs one image, got a batch of {inputs.shape[0]}")
    edited = list(dict.fromkeys(edit.layer for edits in edit_sets for edit in edits))
    replace = {layer: _RowEdits(layer, edit_sets) for layer in edited}
    wanted = ([LOGITS] if model.num_classes is not None else []) + list(layers)
    with torch.no_grad(), capture(model, list(dict.fromkeys([*wanted, *edited])), replace=replace) as cap:
        found = cap(inputs)
    return {layer: found[layer] for layer in wanted}


def edited_logits(model: Model, inputs: torch.Tensor, edit_sets: Sequence[Sequence[LayerEdit]],
                  batch: int = 32) -> torch.Tensor:
    """(1 + len(edit_sets), classes): the unedited logits, then one row per edit set, run
    ``batch`` edit sets per forward pass (``edited_forward``)."""
    if model.num_classes is None:
        raise NeuronscopeError(f"{model.name} has no class output to compare before and after the edits")
    rows = []
    for start in range(0, max(1, len(edit_sets)), batch):
        found = edited_forward(model, inputs, edit_sets[start:start + batch])[LOGITS]
        rows.append(found if start == 0 else found[1:])
    return torch.cat(rows)


def next_layers(model: Model, edits: Sequence[LayerEdit]) -> list[str]:
    """The first shown layer of the network deeper than every edited layer (none after the last)."""
    deepest = max(model.depth(edit.layer) for edit in edits)
    later = [info.name for info in model.layers if info.name not in model.derived and info.spatial is not None
             and model.depth(info.name) > deepest]
    return later[:1]


class _RowEdits:
    """The ``replace`` function of one layer: row r > 0 gets the edits of set r - 1 at this layer
    (the first edited layer receives one row and makes the rows)."""

    def __init__(self, layer: str, edit_sets: Sequence[Sequence[LayerEdit]]) -> None:
        self.rows = [[edit for edit in edits if edit.layer == layer] for edits in edit_sets]

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        if values.shape[0] == 1:
            values = values.expand(1 + len(self.rows), *values.shape[1:])
        rows = [values[:1]]
        for row, edits in enumerate(self.rows, 1):
            value = values[row:row + 1]
            for edit in edits:
                value = edit.apply(value)
            rows.append(value)
        return torch.cat(rows)


def _channel_means(values: torch.Tensor) -> np.ndarray:
    """(C,) each channel's mean over positions (a vector layer: the values)."""
    return (values.flatten(1).mean(1) if values.dim() > 1 else values).double().cpu().numpy()
