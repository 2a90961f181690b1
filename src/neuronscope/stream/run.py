"""``stream``: drive one pass over a source for a list of accumulators, with a progress bar and
checkpoints from which an interrupted pass resumes."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..capture import capture
from ..data.loading import Batch, Preparer, batches, default_workers
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..manifest import stable_hash, write_npz
from ..models.digest import weights_digest
from .accumulator import Accumulator, BatchView, Reader, Summarizer


@dataclass(frozen=True)
class PassConfig:
    """How a pass runs; none of it changes the results.

    Attributes:
        batch: images per forward pass.
        workers: processes that decode and resize images while the model runs (a DataLoader);
            None: ``data.loading.default_workers`` (none for a few batches, else up to 4).
        checkpoint_every: with a checkpoint file, save the running state every this many batches.
        progress: show a progress bar over images.
    """

    batch: int = 16
    workers: int | None = None
    checkpoint_every: int = 8
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("batch", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise NeuronscopeError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.workers is not None and self.workers < 0:
            raise NeuronscopeError(f"workers must be 0 or more (or None for automatic), got {self.workers}")


@dataclass
class BatchParts:
    """One batch's contribution to a pass: its readable items (position, key), the unreadable
    ones (key, reason), the position after its last candidate and one partial per accumulator
    (None for a batch without readable items). Small whatever the batch size."""

    items: list[tuple[int, str]]
    skipped: list[tuple[str, str]]
    next: int
    partials: list[Any]


@dataclass
class PassPlan:
    """What a pass runs on each batch: every reader once (the union of the layers asked of it)
    and every accumulator's summarizer. Picklable: a Ray worker runs ``summarize`` on its copy."""

    readers: dict[str, Reader]
    layers: dict[str, tuple[str, ...]]
    summarizers: list[Summarizer]

    @classmethod
    def of(cls, accumulators: Sequence[Accumulator]) -> PassPlan:
        readers: dict[str, Reader] = {}
        layers: dict[str, dict[str, None]] = {}
        for accumulator in accumulators:
            for reader, names in accumulator.reads.items():
                known = readers.setdefault(reader.key, reader)
                if known.model is not reader.model:
                    raise NeuronscopeError(f"two different models are named '{reader.model.name}': give each its own name")
                layers.setdefault(reader.key, {}).update(dict.fromkeys(names))
        return cls(readers, {key: tuple(names) for key, names in layers.items()},
                   [accumulator.summarizer for accumulator in accumulators])

    @property
    def preparers(self) -> list[Preparer]:
        """The distinct preprocessings of the readers: each item is prepared once per entry."""
        return list(dict.fromkeys(reader.preparer for reader in self.readers.values()))

    def summarize(self, batch: Batch) -> BatchParts:
        """Run each model once per reader on the batch's inputs, then every summarizer."""
        if not batch.items:
            return BatchParts([], batch.skipped, batch.next, [None] * len(self.summarizers))
        index = {preparer: i for i, preparer in enumerate(self.preparers)}
        inputs = {key: batch.inputs[index[reader.preparer]].to(reader.model.device, reader.model.dtype)
                  for key, reader in self.readers.items()}
        activations = {}
        with torch.no_grad():
            for model, keys in self._by_model().items():
                wanted = list(dict.fromkeys(name for key in keys for name in self.layers[key]))
                if not wanted:
                    activations.update({key: {} for key in keys})
                    continue
                with capture(model, wanted) as cap:  # closed before summarizers run their own passes
                    for key in keys:
                        found = cap(inputs[key])
                        activations[key] = {name: found[name] for name in self.layers[key]}
        view = BatchView(list(batch.items), {key: r.model for key, r in self.readers.items()}, inputs, activations)
        return BatchParts(list(batch.items), batch.skipped, batch.next, [summarize(view) for summarize in self.summarizers])

    def _by_model(self) -> dict:
        groups: dict[int, tuple] = {}
        for key, reader in self.readers.items():
            groups.setdefault(id(reader.model), (reader.model, []))[1].append(key)
        return dict(groups.values())


Runner = Callable[[PassPlan, ImageSource, PassConfig, int], Iterator[BatchParts]]
"""How a pass is run: (plan, source, config, start position) -> every batch's parts in source
order (``local_batches`` here; ``scale.RayEngine.pass_runner`` on a Ray cluster)."""


def local_batches(plan: PassPlan, source: ImageSource, config: PassConfig, start: int) -> Iterator[BatchParts]:
    """The pass in this process: decode (in ``config.workers`` DataLoader processes), run, summarize."""
    workers = default_workers(source, config.batch) if config.workers is None else config.workers
    for batch in batches(source, plan.preparers, start, config.batch, workers):
        yield plan.summarize(batch)


@dataclass
class PassResult:
    """What a finished pass reports besides its accumulators: how many images were read and the
    (key, reason) of every item that could not be."""

    images: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    checkpoint: Path | None = None

    def forget_checkpoint(self) -> None:
        """Delete the pass's checkpoint; call it once the results are saved."""
        if self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)


def stream(source: ImageSource, accumulators: Sequence[Accumulator], config: PassConfig = PassConfig(), *,
           checkpoint: Path | None = None, runner: Runner | None = None, what: str = "pass") -> PassResult:
    """One pass over ``source`` for every accumulator (see the package docstring).

    With ``checkpoint`` (a file path), the running state of the pass and of every accumulator is
    saved there every ``config.checkpoint_every`` batches, and a pass with the same accumulators,
    models, source and batch size resumes from it; call ``PassResult.forget_checkpoint`` once the
    results are safe. ``runner``: another engine (``local_batches`` by default)."""
    if not accumulators:
        raise NeuronscopeError("a pass needs at least one accumulator")
    names = [accumulator.name for accumulator in accumulators]
    if len(set(names)) < len(names):
        raise NeuronscopeError(f"two accumulators of one pass collect the same thing: {names}")
    plan = PassPlan.of(accumulators)
    signature = stable_hash([names, sorted((key, weights_digest(r.model)) for key, r in plan.readers.items()),
                             config.batch, source.fingerprint()])
    state = _Progress()
    if checkpoint is not None:
        state.resume(checkpoint, signature, accumulators)
    bar = tqdm(total=len(source), initial=state.next, desc=f"{what} over {source.name}"[:60], unit="image",
               disable=not config.progress, leave=False)
    try:
        for parts in (runner or local_batches)(plan, source, config, state.next):
            if parts.items:
                for accumulator, partial in zip(accumulators, parts.partials):
                    accumulator.merge(partial, parts.items)
            state.add(parts)
            bar.update(state.next - bar.n)
            if checkpoint is not None and parts.items and state.batches % config.checkpoint_every == 0:
                state.save(checkpoint, signature, accumulators)
    finally:
        bar.close()
    if state.images == 0:
        first = f" (first: {state.skipped[0][1]})" if state.skipped else ""
        raise NeuronscopeError(f"no readable image in {source.name}: all {len(state.skipped)} items failed to load{first}")
    return PassResult(state.images, list(state.skipped), checkpoint)


class _Progress:
    """Where a pass stands: the next candidate position, batches and images read, items skipped."""

    def __init__(self) -> None:
        self.next = self.batches = self.images = 0
        self.skipped: list[tuple[str, str]] = []

    def add(self, parts: BatchParts) -> None:
        if parts.items:
            self.batches += 1
            self.images += len(parts.items)
        self.skipped.extend(parts.skipped)
        self.next = parts.next

    def save(self, path: Path, signature: str, accumulators: Sequence[Accumulator]) -> None:
        arrays = {"signature": np.array(signature), "next": np.array(self.next), "batches": np.array(self.batches),
                  "images": np.array(self.images), "skipped": np.array(self.skipped, dtype=str).reshape(-1, 2)}
        for i, accumulator in enumerate(accumulators):
            arrays.update({f"{i}/{name}": value for name, value in accumulator.state().items()})
        write_npz(path, arrays)

    def resume(self, path: Path, signature: str, accumulators: Sequence[Accumulator]) -> None:
        """Continue from ``path`` if it is a checkpoint of this very pass (else start over)."""
        if not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["signature"]) != signature:
                    return
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, KeyError):
            return  # unreadable: start over
        try:
            for i, accumulator in enumerate(accumulators):
                accumulator.restore({name[len(f"{i}/"):]: value for name, value in arrays.items()
                                     if name.startswith(f"{i}/")})
            self.next, self.batches, self.images = (int(arrays[k]) for k in ("next", "batches", "images"))
            self.skipped = [tuple(pair) for pair in arrays["skipped"].tolist()]
        except (ValueError, KeyError, TypeError) as error:  # the accumulators are half restored: no way on
            path.unlink(missing_ok=True)
            raise NeuronscopeError(f"the pass checkpoint {path} is damaged ({error!r}); it was removed: "
                                   "run the same command again to start the pass over") from None
