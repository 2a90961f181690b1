"""How many images a render optimizes together: sized from the layer table and the device's
free memory, capped per device kind, and halved when a batch runs out of memory."""
from __future__ import annotations

import torch

from ..errors import NeuronscopeError
from ..models.model import Model
from ..models.placement import empty_cache, free_memory, is_out_of_memory
from ..units import Unit

CPU_BATCH, ACCELERATOR_BATCH = 16, 128
"""Default most images per batch (``RenderConfig.max_batch`` None) on CPUs and on accelerators."""
CPU_PIXELS = CPU_BATCH * 128 * 128
"""On a CPU, smaller images batch further, up to this many pixels a batch: at small sizes and
deep layers every operation is tiny and its fixed cost dominates (51 icons of 64 px at
``blocks.6.0`` of Lite0: 28.9 s in one batch against 36.6 s in batches of 16, the same images)."""


def batch_cap(config, device: torch.device, side: tuple[int, int] | None = None) -> int:
    """The most images per batch: ``config.max_batch``, or the default for ``device``'s kind (on a
    CPU, for images of ``side`` smaller than 128 px, as many as fit in ``CPU_PIXELS``)."""
    if config.max_batch is not None:
        return config.max_batch
    if free_memory(device) is not None:
        return ACCELERATOR_BATCH
    return CPU_BATCH if side is None else max(CPU_BATCH, CPU_PIXELS // (side[0] * side[1]))


def halved(unit_ids: list[int], error: Exception, device: torch.device) -> list[list[int]]:
    """The two halves of a chunk that ran out of memory (any other error is raised as it is)."""
    if not is_out_of_memory(error):
        raise error
    if len(unit_ids) == 1:
        raise NeuronscopeError("out of memory rendering one unit: use a smaller --size or --samples, "
                               "or another device") from None
    empty_cache(device)
    half = len(unit_ids) // 2
    return [unit_ids[:half], unit_ids[half:]]


def run_index(model: Model, layer: str) -> int:
    return list(model._layer_table()).index(model.network_layer(layer))


def batch_size(model: Model, units: list[Unit], config, samples: int) -> int:
    """Images per batch: what fits ``memory_budget_mb`` (an estimate from the layer table:
    the outputs of all leaf modules up to the deepest layer, kept for backward, plus gradients),
    capped by ``max_batch``, rounded down to whole units."""
    table = model._layer_table()
    deepest = max(run_index(model, u.layer) for u in units)
    modules = dict(model.module.named_modules())
    names = list(table)[: deepest + 1]
    floats = sum(
        table[n].channels * (table[n].spatial[0] * table[n].spatial[1] if table[n].spatial else 1)
        for n in names if n in modules and not any(True for _ in modules[n].children())
    )
    side = config.transform_config.output_size((config.size, config.size))
    scale = (side[0] * side[1]) / (model.input_size[0] * model.input_size[1])
    per_image_mb = max(floats * scale * 4 * 3 / 2**20, 1e-3)
    free = free_memory(model.device)  # an accelerator's free memory, when it can say, raises the budget
    budget = config.memory_budget_mb if free is None else max(config.memory_budget_mb, free / 2 / 2**20)
    fits = int(budget / per_image_mb)
    images = max(samples, min(batch_cap(config, model.device, side), fits))
    return max(samples, images // samples * samples)
