"""Model specs: the one string (plus a few options) that names a model everywhere.

A spec is a zoo name (``efficientnet_lite0``), a factory (``package.module:factory`` or
``path/to/file.py:factory``, a callable that returns an ``nn.Module`` or a `Model`), or a TorchScript
file (``model.pt``). ``ModelSpec.load`` builds the `Model`; ``to_dict`` is what manifests record so
that anyone can load the same model again (``ModelSpec.from_dict(manifest["model_spec"]).load()``).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import NeuronscopeError, did_you_mean
from .adapter import checked, first_conv_channels
from .metadata import NORMALIZATIONS, ModelInfo, parse_labels, parse_normalization
from .model import Model
from .placement import PRECISIONS, resolve_device, resolve_precision
from .weights import load_weights_file
from .zoo import DEFAULT_MODEL, ZOO

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript")
DEFAULT_INPUT_SIZE = 224
IMAGENET_CLASSES = 1000


class WeightsMissingWarning(UserWarning):
    """A zoo architecture was built without trained weights (its pictures would mean nothing)."""


@dataclass(frozen=True)
class ModelSpec:
    """How to load a model. Metadata options override what the model says about itself.

    Attributes:
        source: a zoo name, ``package.module:factory``, ``path/to/file.py:factory`` or a TorchScript file.
        weights: a state dict file loaded strict into the built network (None: the zoo's own weights,
            or the factory's as it returns them).
        input_size: the model's input side in pixels (default: the zoo's, the module's ``input_size``
            attribute, a timm ``pretrained_cfg``, else 224).
        normalize: ``imagenet``, ``tf``, ``none`` or ``MEAN,STD`` (2 or 2 x channels numbers, on
            [0, 1] inputs); default: the zoo's, the module's ``normalize`` / ``mean`` + ``std``
            attributes or timm cfg, else ``imagenet``.
        labels: ``imagenet`` or a text file with one class name per line (default: the zoo's, the
            module's ``labels`` attribute, else ImageNet-1k names when the model has 1000 outputs).
        device: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: None (float32), ``bf16`` or ``fp16``: the forward pass under autocast.
    """

    source: str = DEFAULT_MODEL
    weights: str | None = None
    input_size: int | None = None
    normalize: str | None = None
    labels: str | None = None
    device: str = "auto"
    precision: str | None = None

    @property
    def kind(self) -> str:
        """``zoo``, ``factory`` or ``torchscript``."""
        if self.source in ZOO:
            return "zoo"
        if ":" in self.source and not Path(self.source).exists():
            return "factory"
        if Path(self.source).suffix.lower() in TORCHSCRIPT_SUFFIXES or Path(self.source).is_file():
            return "torchscript"
        raise NeuronscopeError(
            f"unknown model '{self.source}': {did_you_mean(self.source, ZOO)}; give a zoo model "
            f"({', '.join(ZOO)}), package.module:factory, path/to/file.py:factory or a TorchScript file")

    def load(self) -> Model:
        """The model, in eval mode, on ``device``, with frozen weights."""
        device = resolve_device(self.device)
        model = self._build({"precision": resolve_precision(self.precision, device), "spec": self.absolute()})
        for parameter in model.module.parameters():  # (requires_grad_ of a ScriptModule is refused)
            parameter.requires_grad_(False)
        model.to(device)
        if model.weights_missing:
            warnings.warn(model.weights_missing, WeightsMissingWarning, stacklevel=3)
        return model

    def _build(self, loading: dict[str, Any]) -> Model:
        """The model with its weights and its metadata: the spec's options (and ``loading``: its
        precision and spec) over what the zoo, the factory's `Model` or the module itself says."""
        kind = self.kind
        if kind == "zoo":
            network, info = ZOO[self.source].make(Path(self.weights) if self.weights else None)  # checked by weights.py
            return _overridden(network, info, self, loading)
        built = _call_factory(self.source) if kind == "factory" else _torchscript(self.source)
        if isinstance(built, Model):
            if self.weights:
                load_weights_file(built.module, self.weights, _expected(built.module))
            return _overridden(built.module, built.info, self, loading)
        if not isinstance(built, nn.Module):
            raise NeuronscopeError(f"'{self.source}' returned {type(built).__name__}, not an nn.Module")
        if self.weights:
            load_weights_file(built, self.weights, _expected(built))
        return _from_module(built, self, loading)

    def absolute(self) -> ModelSpec:
        """The same spec with file paths made absolute, so it loads from any folder."""
        source = self.source
        if self.kind == "factory" and source.rpartition(":")[0].endswith(".py"):
            path, _, factory = source.rpartition(":")
            source = f"{Path(path).resolve()}:{factory}"
        elif self.kind == "torchscript":
            source = str(Path(source).resolve())
        weights = str(Path(self.weights).resolve()) if self.weights else None
        labels = str(Path(self.labels).resolve()) if self.labels not in (None, "imagenet") else self.labels
        return replace(self, source=source, weights=weights, labels=labels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def load(spec: str | ModelSpec = DEFAULT_MODEL, **options: Any) -> Model:
    """A model, in eval mode with frozen weights, from a zoo name, ``package.module:factory``,
    ``path/to/file.py:factory`` or a TorchScript file; ``options`` are ``ModelSpec``'s fields
    (``weights``, ``input_size``, ``normalize``, ``labels``, ``device``, ``precision``).

    >>> model = neuronscope.load("efficientnet_lite0")
    >>> mine = neuronscope.load("my_models.py:resnet_small", weights="resnet_small.pt", device="cuda")
    """
    if isinstance(spec, ModelSpec):
        return replace(spec, **options).load() if options else spec.load()
    unknown = [k for k in options if k not in ModelSpec.__dataclass_fields__]
    if unknown:
        raise NeuronscopeError(f"unknown load options {unknown}: choose from {', '.join(list(ModelSpec.__dataclass_fields__)[1:])}")
    return ModelSpec(str(spec), **{k: v for k, v in options.items() if v is not None}).load()


# --- building ---------------------------------------------------------------------------


def _call_factory(source: str) -> Any:
    target, _, name = source.rpartition(":")
    if not name.isidentifier():
        raise NeuronscopeError(f"'{source}' names no factory: write package.module:factory or path/to/file.py:factory")
    module = _import_file(target) if target.endswith(".py") else _import_module(target)
    factory = getattr(module, name, None)
    if factory is None:
        public = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise NeuronscopeError(f"'{target}' has no factory '{name}': {did_you_mean(name, public)}")
    if not callable(factory):
        raise NeuronscopeError(f"'{source}' is a {type(factory).__name__}, not a callable that returns a model")
    try:
        return factory()
    except Exception as error:  # noqa: BLE001 - the user's code: report it in one line
        raise NeuronscopeError(f"factory '{source}' raised {type(error).__name__}: {_first_line(error)}") from None


def _import_module(target: str) -> Any:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        raise NeuronscopeError(f"cannot import module '{target}' ({_first_line(error)}); is it installed, or "
                               "did you mean path/to/file.py:factory?") from None
    except Exception as error:  # noqa: BLE001
        raise NeuronscopeError(f"importing '{target}' raised {type(error).__name__}: {_first_line(error)}") from None


def _import_file(target: str) -> Any:
    path = Path(target).resolve()
    if not path.is_file():
        raise NeuronscopeError(f"model file '{target}' does not exist")
    name = f"neuronscope_user_{path.stem}_{abs(hash(str(path)))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # the file may import its neighbours, as when run as a script
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001
        raise NeuronscopeError(f"running '{target}' raised {type(error).__name__}: {_first_line(error)}") from None
    finally:
        sys.path.remove(str(path.parent))
    sys.modules[name] = module
    return module


def _torchscript(source: str) -> nn.Module:
    path = Path(source)
    if not path.is_file():
        raise NeuronscopeError(f"TorchScript file '{source}' does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript; it still loads
            return torch.jit.load(str(path), map_location="cpu")
    except Exception:  # noqa: BLE001
        raise NeuronscopeError(
            f"'{source}' is not a TorchScript model (torch.jit.save); for a state dict give the "
            f"architecture as package.module:factory or file.py:factory and the file as --weights") from None


def _overridden(network: nn.Module, info: ModelInfo, spec: ModelSpec, loading: dict[str, Any]) -> Model:
    """A zoo model or a factory's `Model`, its metadata with the spec's options applied."""
    changes = dict(loading)
    if spec.input_size:
        changes["input_size"] = int(spec.input_size)
    if spec.normalize:
        changes["normalization"] = parse_normalization(spec.normalize)
    if spec.labels:
        changes["classes"] = parse_labels(spec.labels)
    model = Model(network, replace(info, **changes))
    return checked(model) if spec.labels else model


def _from_module(module: nn.Module, spec: ModelSpec, loading: dict[str, Any]) -> Model:
    """A bare module's model: its metadata from the spec's options, else what the module says
    about itself, else the defaults; ImageNet-1k names when it has 1000 outputs and no labels."""
    said = _declared(module)
    info = ModelInfo(
        name=said.get("name") or _name_of(spec.source),
        input_size=spec.input_size or said.get("input_size") or DEFAULT_INPUT_SIZE,
        input_channels=first_conv_channels(module),
        normalization=(parse_normalization(spec.normalize) if spec.normalize
                       else said.get("normalize", NORMALIZATIONS["imagenet"])),
        classes=parse_labels(spec.labels or said.get("labels")),
        crop_fraction=said.get("crop_fraction", 1.0),
        layers=said.get("layers"),
        **loading,
    )
    model = checked(Model(module, info))
    if info.classes is None and model.num_classes == IMAGENET_CLASSES:
        return Model(module, replace(info, classes=parse_labels("imagenet")))
    return model


def _declared(module: nn.Module) -> dict[str, Any]:
    """What a module says about itself: attributes ``input_size``, ``normalize`` or ``mean``/``std``,
    ``labels``, ``layers``, ``crop_fraction``, ``name``, or a timm ``pretrained_cfg``. Attributes of
    the wrong type (a ``layers`` ModuleList) are not metadata and are ignored."""
    said: dict[str, Any] = {}
    cfg = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None)
    if isinstance(cfg, dict):
        if isinstance(cfg.get("input_size"), Sequence) and len(cfg["input_size"]) == 3:
            said["input_size"] = int(cfg["input_size"][-1])
        if cfg.get("mean") and cfg.get("std"):
            said["normalize"] = parse_normalization((cfg["mean"], cfg["std"]))
        if isinstance(cfg.get("crop_pct"), float):
            said["crop_fraction"] = cfg["crop_pct"]
    size = getattr(module, "input_size", None)
    if isinstance(size, int) or (isinstance(size, Sequence) and all(isinstance(s, int) for s in size)):
        said["input_size"] = size if isinstance(size, int) else int(size[-1])
    normalize = getattr(module, "normalize", None)
    if isinstance(normalize, str):
        said["normalize"] = parse_normalization(normalize)
    mean, std = getattr(module, "mean", None), getattr(module, "std", None)
    if _floats(mean) and _floats(std):
        said["normalize"] = parse_normalization((mean, std))
    labels = getattr(module, "labels", None)
    if labels == "imagenet" or (isinstance(labels, Sequence) and not isinstance(labels, str)
                                and all(isinstance(x, str) for x in labels)):
        said["labels"] = labels
    layers = getattr(module, "layers", None)
    if isinstance(layers, Sequence) and not isinstance(layers, str) and all(isinstance(x, str) for x in layers):
        said["layers"] = list(layers)
    for key, kind in (("crop_fraction", float), ("name", str)):
        if isinstance(getattr(module, key, None), kind) and not isinstance(module, torch.jit.ScriptModule):
            said[key] = getattr(module, key)
    return said


def _floats(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, float | int) for v in value)


def _expected(module: nn.Module) -> str:
    keys = list(module.state_dict())
    example = f", e.g. '{keys[0]}'" if keys else ""
    return f"a state dict of {type(module).__name__} ({len(keys)} tensors{example})"


def _name_of(source: str) -> str:
    if ":" in source and not Path(source).exists():
        return source.rpartition(":")[2]
    return Path(source).stem


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


__all__ = ["PRECISIONS", "ModelSpec", "WeightsMissingWarning", "load"]
