"""`Model`: an ``nn.Module`` in eval mode plus the metadata every technique needs."""
from __future__ import annotations

from html import escape

import numpy as np
import torch
from torch import nn

from ..data import preprocess
from ..data.photos import resolve_image
from ..errors import NeuronscopeError, did_you_mean
from ..names import LOGITS
from ..overrides import counting_functional_relus
from .derived import DerivedLayer
from .discover import LayerInfo, accepts_other_sizes, layer_table
from .metadata import ModelInfo


class LayerTable(tuple):
    """A tuple of ``LayerInfo`` that notebooks show as a table (name, kind, channels, spatial)."""

    def _repr_html_(self) -> str:
        head = "<tr><th>layer</th><th>kind</th><th>channels</th><th>spatial (HxW)</th></tr>"
        rows = "".join(
            f"<tr><td>{escape(info.name)}</td><td>{escape(info.kind)}</td><td>{info.channels}</td>"
            f"<td>{'x'.join(map(str, info.spatial)) if info.spatial else '-'}{' tokens' if info.is_tokens else ''}</td></tr>"
            for info in self)
        return f"<table>{head}{rows}</table>"


def _from_info(field: str, doc: str) -> property:
    return property(lambda self: getattr(self.info, field), doc=doc)


class Model:
    """A vision model ready for inspection.

    Holds the module (in eval mode) and its metadata: the input size and value range, the
    normalization applied before the forward pass, the class labels, and the layers worth showing.
    Every layer of ``named_modules()`` is addressable; ``layers`` is the curated subset.
    Build one with ``neuronscope.load(name)`` or ``neuronscope.wrap(module, ...)``, or as
    ``Model(module, ModelInfo(...))``: the metadata is given whole, never changed afterwards.
    ``derived`` layers (``models.derived``, e.g. a dictionary's features) are addressable like
    the module's own; ``with_layers`` gives a model with more of them.
    """

    def __init__(self, module: nn.Module, info: ModelInfo, derived: tuple[DerivedLayer, ...] = ()) -> None:
        self.module = module.eval()
        self.info = info
        """Everything this model knows besides its module; the properties below read it."""
        self.derived: dict[str, DerivedLayer] = {d.name: d for d in derived}
        """Derived layers by name (``models.derived``)."""
        self.value_range = (0.0, 1.0)
        self._modules = {n: m for n, m in module.named_modules() if n}
        self._table: dict[str, LayerInfo] | None = None
        self._fixed: bool | None = None
        self._functional: tuple[int, int] | None = None

    name = _from_info("name", "Shown in errors, manifests and the gallery.")
    input_size = _from_info("input_size", "Default (height, width) of an input.")
    input_channels = _from_info("input_channels", "Channels of an input image.")
    crop_fraction = _from_info("crop_fraction", "Fraction of the centred crop ``prepare`` takes from a photo.")
    weights_missing = _from_info(
        "weights_missing", "None, or why the network has no trained weights here and how to get them (one line).")
    precision = _from_info(
        "precision", "Autocast dtype of the forward pass (None: the parameters' own dtype); see ``ModelSpec``.")
    spec = _from_info("spec", "The ``ModelSpec`` this model was loaded from (None for ``wrap``): manifests record it.")

    @property
    def mean(self) -> tuple[float, ...] | None:
        """Per-channel mean subtracted from [0, 1] inputs (None: no normalization)."""
        return self.info.normalization[0] if self.info.normalization is not None else None

    @property
    def std(self) -> tuple[float, ...] | None:
        """Per-channel std inputs are divided by (None: no normalization)."""
        return self.info.normalization[1] if self.info.normalization is not None else None

    @property
    def labels(self) -> tuple[str, ...] | None:
        """Class names by output index (None: classes are indices only)."""
        return self.info.classes.names if self.info.classes is not None else None

    @property
    def label_synonyms(self) -> tuple[tuple[str, ...], ...] | None:
        """Every name of each class (the first is the display name), or None."""
        return self.info.classes.synonyms if self.info.classes is not None else None

    def __repr__(self) -> str:
        size = "x".join(map(str, self.input_size))
        extra = f", derived {', '.join(self.derived)}" if self.derived else ""
        return f"Model({self.name!r}, input {self.input_channels}x{size}, {len(self._modules)} modules{extra})"

    def with_layers(self, *derived: DerivedLayer) -> Model:
        """This model (same module, same metadata) with more derived layers; a derived layer of
        the same name is replaced. The model itself is not changed."""
        for layer in derived:
            parent = self.layer(layer.parent)
            if parent.name in self.derived or parent.spatial is None:
                raise NeuronscopeError(f"a derived layer needs a spatial layer of the network as its parent, not '{parent.name}'")
            if layer.name in self._layer_table() or layer.name in self._modules:
                raise NeuronscopeError(f"{self.name} already has a layer named '{layer.name}': give the derived layer another name")
        merged = {**self.derived, **{layer.name: layer for layer in derived}}
        featured = Model(self.module, self.info, tuple(merged.values()))
        # the same network: its probed layer table, size check and ReLU count hold as they are
        featured._table, featured._fixed, featured._functional = self._table, self._fixed, self._functional
        return featured

    @property
    def variant(self) -> str:
        """'' for the network alone; else what tells its derived layers apart (in pass keys)."""
        if not self.derived:
            return ""
        return "+" + "+".join(f"{name}={layer.fingerprint[:8]}" for name, layer in self.derived.items())

    # --- layers -------------------------------------------------------------------------

    @property
    def layers(self) -> LayerTable:
        """The curated layers worth showing, shallow to deep (a tuple; an HTML table in notebooks)."""
        table = {**self._layer_table(), **self._derived_table()}
        names = list(self.info.layers) if self.info.layers is not None else list(self._layer_table())
        for name, layer in self.derived.items():  # right after the parent, or at the end
            names.insert(names.index(layer.parent) + 1 if layer.parent in names else len(names), name)
        return LayerTable(table[n] for n in names)

    def all_layers(self) -> LayerTable:
        """Every layer of the network (each module that runs once and outputs a tensor), in run
        order; derived layers are not among them (see ``layers`` and ``derived``)."""
        return LayerTable(self._layer_table().values())

    def layer(self, name: str) -> LayerInfo:
        """Metadata of one layer (of the network, or derived); an unknown name raises an error
        with the three closest names."""
        table = self._layer_table()
        if name in table:
            return table[name]
        if name in self.derived:
            return self._derived_table()[name]
        table = {**table, **self._derived_table()}
        if name in self._modules:
            raise NeuronscopeError(
                f"layer '{name}' of {self.name} cannot be captured: it does not run exactly once per forward "
                f"pass or does not output a tensor; {did_you_mean(name, table)}"
            )
        raise NeuronscopeError(f"unknown layer '{name}' in {self.name}: {did_you_mean(name, table)}")

    def spatial_layer(self, name: str) -> LayerInfo:
        """``layer(name)``, which must have spatial extent (positions), as maps and grids need."""
        info = self.layer(name)
        if info.spatial is None:
            raise NeuronscopeError(f"layer '{name}' has no spatial extent (it outputs {info.channels} values); choose a conv layer")
        return info

    def submodule(self, name: str) -> nn.Module:
        """The module registered under ``name`` (validated like ``layer``)."""
        self.layer(name)
        if name in self.derived:
            raise NeuronscopeError(f"'{name}' is a derived layer (computed from '{self.derived[name].parent}'), not a module")
        return self._modules[name]

    def depth(self, name: str) -> float:
        """Relative depth of a layer in [0, 1]: its position in run order among the network's
        layers (a derived layer: its parent's)."""
        names = list(self._layer_table())
        return names.index(self.network_layer(name)) / max(1, len(names) - 1)

    def network_layer(self, name: str) -> str:
        """The layer of the network that runs for ``name``: itself, or a derived layer's parent."""
        return self.derived[name].parent if name in self.derived else self.layer(name).name

    @property
    def fixed_input_size(self) -> bool:
        """Whether the network only runs at ``input_size`` (a transformer with fixed position
        embeddings, a classifier on flattened features); captures then resize other images to
        it. Probed with the layer table, by one more forward pass at another size."""
        self._layer_table()
        return self._fixed

    @property
    def functional_relus(self) -> tuple[int, int]:
        """(redirectable, in-place) functional ReLU calls of one forward pass outside ReLU modules
        (``F.relu`` in a user's ``forward``): renders redirect the first kind and warn about the
        second. Counted on the layer table's probe pass."""
        self._layer_table()
        return self._functional

    @property
    def scripted(self) -> bool:
        """Whether any part of the network is TorchScript, whose code no gradient fix can reach."""
        return any(isinstance(m, torch.jit.ScriptModule) for m in self.module.modules())

    def _layer_table(self) -> dict[str, LayerInfo]:
        if self._table is None:
            with counting_functional_relus(self.module) as counter:  # counted on the table's own probe pass
                table = layer_table(self)
            _check(self, table)
            self._table = table
            self._functional = (counter.redirected, counter.left_alone)
            self._fixed = not accepts_other_sizes(self)
        return self._table

    def _derived_table(self) -> dict[str, LayerInfo]:
        table = self._layer_table()
        return {name: LayerInfo(name, layer.kind, layer.channels, table[layer.parent].spatial)
                for name, layer in self.derived.items()}

    # --- classes ------------------------------------------------------------------------

    @property
    def num_classes(self) -> int | None:
        info = self._layer_table().get(LOGITS)
        return info.channels if info is not None else None

    def class_index(self, name: str | int) -> int:
        """A class by index or by label name ('tabby', 'Egyptian cat', '281')."""
        if isinstance(name, int | np.integer):
            name = str(int(name))
        if self.labels is None:
            if str(name).isdigit():
                return int(name)
            raise NeuronscopeError(f"model {self.name} has no class labels; give the class as an index")
        return self.info.classes.index(str(name))

    # --- inputs -------------------------------------------------------------------------

    def prepare(self, image: np.ndarray | torch.Tensor, size: int | tuple[int, int] | None = None,
                crop_fraction: float | None = None) -> torch.Tensor:
        """A photo (H, W[, C] array in [0, 1] or uint8) as a (1, C, H, W) input in [0, 1]:
        centre crop (``crop_fraction`` of the short side; default the model's), bicubic resize
        to ``size`` (default: the model's input size), on the model's device."""
        target = self.input_size if size is None else _pair(size)
        fraction = self.crop_fraction if crop_fraction is None else crop_fraction
        x = preprocess.to_tensor(image).to(self.device, self.dtype)
        x = preprocess.match_channels(x, self.input_channels)
        return preprocess.center_crop_resize(x, target, fraction)

    def input(self, image, size: int | tuple[int, int] | None = None,
              crop_fraction: float | None = None) -> torch.Tensor:
        """Anything that names an image as a (1, C, H, W) input: a batch tensor already prepared
        (used as it is, on the model's device), or a path, bundled photo name, RGB array or
        (C, H, W) tensor, prepared with ``prepare``."""
        if isinstance(image, torch.Tensor):
            return image.to(self.device, self.dtype) if image.dim() == 4 else self.prepare(image, size, crop_fraction)
        return self.prepare(resolve_image(image), size, crop_fraction)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map images in the value range [0, 1] to what the network expects (done by ``capture``)."""
        if x.dim() != 4 or x.shape[1] != self.input_channels:
            raise NeuronscopeError(
                f"{self.name} expects images of shape (B, {self.input_channels}, H, W), got {tuple(x.shape)}"
            )
        return preprocess.normalize(x, self.mean, self.std)

    # --- placement ----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        first = next(self.module.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        first = next(self.module.parameters(), None)
        return first.dtype if first is not None else torch.float32

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Model:
        """Move the module (in place, like ``nn.Module.to``) and return this model."""
        self.module.to(device=device, dtype=dtype)
        return self


def _check(model: Model, table: dict[str, LayerInfo]) -> None:
    """The curated layers and the class names must fit what the probe pass found."""
    missing = [n for n in (model.info.layers or ()) if n not in table]
    if missing:
        raise NeuronscopeError(f"curated layers {missing} are not capturable in {model.name}")
    classes = table[LOGITS].channels if LOGITS in table else None
    if model.labels is not None and classes not in (None, len(model.labels)):
        raise NeuronscopeError(f"{len(model.labels)} labels given but {model.name} outputs {classes} classes")


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return (int(size), int(size))
    height, width = size
    return (int(height), int(width))
