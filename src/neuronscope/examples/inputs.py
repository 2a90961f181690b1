"""A source's items for the views that follow a pass (example crops, the classes units support,
polysemanticity, photo pages): each item decoded once, prepared once per model that needs it.

    images = ExampleImages(source)
    images.prefetch({Preparer.of(lite0): keys_a, Preparer.of(lite1): keys_b}, raw=["holiday.jpg"])
    images.inputs(lite0)("holiday.jpg")         # (1, C, H, W): as the model saw it in the pass
    images.raw("holiday.jpg")                   # the decoded image, for a photo page

Prepared inputs are kept up to ``budget_mb``; beyond it the least recently used are dropped and
decoded again when asked for (so memory stays bounded on a big source, at the cost of reading
some files twice).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch

from ..data.loading import Preparer
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..models.model import Model

BUDGET_MB = 2048
"""Memory for prepared inputs: about 3,500 images at 224 px."""


class ExampleImages:
    """Decoded and prepared items of one source, shared by every view of a build."""

    def __init__(self, source: ImageSource, budget_mb: int = BUDGET_MB) -> None:
        self.source = source
        self.budget = budget_mb * 2**20
        self._prepared: OrderedDict[tuple[Preparer, str], torch.Tensor] = OrderedDict()
        self._raw: dict[str, np.ndarray] = {}
        self._bytes = 0
        self.loads = 0
        """How many times an item was decoded (for tests and benchmarks)."""

    def prefetch(self, wanted: Mapping[Preparer, Iterable[str]], raw: Iterable[str] = ()) -> None:
        """Decode every key any preparer wants (and every ``raw`` key) once, in source order,
        and keep each preparer's input of it (and the decoded image of ``raw`` keys)."""
        wanted = {preparer: set(keys) for preparer, keys in wanted.items()}
        raw = set(raw)
        needed = set(raw).union(*wanted.values())
        order = {key: i for i, key in enumerate(self.source.keys())}
        for key in sorted(needed, key=lambda k: order.get(k, len(order))):
            missing = [p for p, keys in wanted.items() if key in keys and (p, key) not in self._prepared]
            if not missing and (key not in raw or key in self._raw):
                continue
            try:
                image = self._load(key)
            except NeuronscopeError:
                continue  # asked for again later, it raises there, where it can be reported
            if key in raw:
                self._raw[key] = image
            for preparer in missing:
                self._keep(preparer, key, preparer(image))

    def prepared(self, preparer: Preparer, key: str) -> torch.Tensor:
        """``key`` prepared by ``preparer``: (C, H, W) float32 on the CPU."""
        found = self._prepared.get((preparer, key))
        if found is None:
            found = self._keep(preparer, key, preparer(self.raw(key) if key in self._raw else self._load(key)))
        else:
            self._prepared.move_to_end((preparer, key))
        return found

    def inputs(self, model: Model, size: tuple[int, int] | None = None) -> Callable[[str], torch.Tensor]:
        """key -> (1, C, H, W): the item as ``model`` sees it at ``size`` (default its input size)."""
        preparer = Preparer.of(model, size)
        return lambda key: self.prepared(preparer, key)[None]

    def example_image(self, model: Model, key: str, size: tuple[int, int] | None = None) -> np.ndarray:
        """The item as ``model`` saw it, as (H, W, 3) float32 in [0, 1] (``examples.example_image``)."""
        return self.prepared(Preparer.of(model, size), key).permute(1, 2, 0).numpy()

    def raw(self, key: str) -> np.ndarray:
        """The decoded item (kept when ``prefetch`` was asked for it raw)."""
        found = self._raw.get(key)
        return found if found is not None else self._load(key)

    def _load(self, key: str) -> np.ndarray:
        self.loads += 1
        return self.source.load(key)

    def _keep(self, preparer: Preparer, key: str, value: torch.Tensor) -> torch.Tensor:
        size = value.element_size() * value.nelement()
        if size > self.budget:
            return value
        self._prepared[(preparer, key)] = value
        self._bytes += size
        while self._bytes > self.budget:
            _, dropped = self._prepared.popitem(last=False)
            self._bytes -= dropped.element_size() * dropped.nelement()
        return value
