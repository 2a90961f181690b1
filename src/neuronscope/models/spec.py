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
from .adapter import NORMALIZATIONS, wrap
from .labels import imagenet_labels, imagenet_synonyms
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
        precision = resolve_precision(self.precision, device)
        kind = self.kind
        if kind == "zoo":
            model = ZOO[self.source].build(Path(self.weights) if self.weights else None)  # checked by weights.py
            model = _override(model, self)
        else:
            built = _call_factory(self.source) if kind == "factory" else _torchscript(self.source)
            model = _as_model(built, self)
        for parameter in model.module.parameters():  # (requires_grad_ of a ScriptModule is refused)
            parameter.requires_grad_(False)
        model.to(device)
        model.precision = precision
        model.spec = self.absolute()
        if getattr(model, "weights_missing", None):
            warnings.warn(model.weights_missing, WeightsMissingWarning, stacklevel=3)
        return model

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


def _as_model(built: Any, spec: ModelSpec) -> Model:
    if isinstance(built, Model):
        if spec.weights:
            load_weights_file(built.module, spec.weights, _expected(built.module))
        return _override(built, spec)
    if not isinstance(built, nn.Module):
        raise NeuronscopeError(f"'{spec.source}' returned {type(built).__name__}, not an nn.Module")
    if spec.weights:
        load_weights_file(built, spec.weights, _expected(built))
    said = _declared(built)
    size = spec.input_size or said.get("input_size") or DEFAULT_INPUT_SIZE
    normalize = _normalization(spec.normalize) if spec.normalize else said.get("normalize", NORMALIZATIONS["imagenet"])
    model = wrap(built, input_size=size, normalize=normalize, name=said.get("name") or _name_of(spec.source),
                 labels=None, crop_fraction=said.get("crop_fraction", 1.0), layers=said.get("layers"))
    return _with_labels(model, spec.labels or said.get("labels"), default_imagenet=True)


def _override(model: Model, spec: ModelSpec) -> Model:
    """A zoo model or a factory's `Model` with the spec's metadata options applied."""
    if spec.input_size:
        model.input_size = (int(spec.input_size), int(spec.input_size))
        model._table = None
    if spec.normalize:
        model.mean, model.std = _normalization(spec.normalize) or (None, None)
    return _with_labels(model, spec.labels, default_imagenet=False) if spec.labels else model


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
            said["normalize"] = (tuple(cfg["mean"]), tuple(cfg["std"]))
        if isinstance(cfg.get("crop_pct"), float):
            said["crop_fraction"] = cfg["crop_pct"]
    size = getattr(module, "input_size", None)
    if isinstance(size, int) or (isinstance(size, Sequence) and all(isinstance(s, int) for s in size)):
        said["input_size"] = size if isinstance(size, int) else int(size[-1])
    normalize = getattr(module, "normalize", None)
    if isinstance(normalize, str):
        said["normalize"] = _normalization(normalize)
    mean, std = getattr(module, "mean", None), getattr(module, "std", None)
    if _floats(mean) and _floats(std):
        said["normalize"] = (tuple(mean), tuple(std))
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


def _normalization(text: str | tuple) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if not isinstance(text, str):
        return text
    if text.lower() in NORMALIZATIONS:
        return NORMALIZATIONS[text.lower()]
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) < 2 or len(numbers) % 2:
        raise NeuronscopeError(f"unknown normalization '{text}': choose {', '.join(NORMALIZATIONS)}, or MEAN,STD "
                               "as 2 numbers (all channels) or 2 x channels numbers (means, then stds) on [0, 1] inputs")
    half = len(numbers) // 2
    mean, std = numbers[:half], numbers[half:]
    if half == 1:
        mean, std = mean * 3, std * 3
    if any(s <= 0 for s in std):
        raise NeuronscopeError(f"normalization '{text}' has a std <= 0")
    return tuple(mean), tuple(std)


def _with_labels(model: Model, labels: str | Sequence[str] | None, default_imagenet: bool) -> Model:
    synonyms = None
    if labels is None:
        if not (default_imagenet and model.num_classes == IMAGENET_CLASSES):
            return model
        labels = "imagenet"
    if labels == "imagenet":
        labels, synonyms = imagenet_labels(), imagenet_synonyms()
    elif isinstance(labels, str):
        path = Path(labels)
        if not path.is_file():
            raise NeuronscopeError(f"--labels must be 'imagenet' or a text file with one class name per line; '{labels}' does not exist")
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if model.num_classes is not None and len(labels) != model.num_classes:
        raise NeuronscopeError(f"{len(labels)} labels given but {model.name} outputs {model.num_classes} classes")
    model.labels = tuple(labels)
    model.label_synonyms = tuple(tuple(s) for s in synonyms) if synonyms is not None else None
    return model


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
