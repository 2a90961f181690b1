"""Manifests read back: what an output was made of, parsed into values, and made again.

    recipe = read_manifest("out/manifest.json")      # units, objective, config, seeds as values
    result = rerender("out/manifest.json")           # the same pixels (same machine and versions)

A manifest names units as ``parse_unit`` reads them, objectives by their spec
(``objectives.from_spec``) and configs as plain fields, so this module needs no knowledge of how
an output was made beyond its ``kind``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dictionaries.layer import with_recorded_features
from .errors import NeuronscopeError
from .featurevis import objectives as obj
from .featurevis.caricature import CaricatureConfig
from .featurevis.render import RenderConfig, Result, render, render_units
from .interpretability.baseline import with_random_directions
from .models import available_models, load
from .models.model import Model
from .models.spec import ModelSpec
from .units import Unit, parse_target, parse_unit

UNIT_FIELDS = ("unit", "units", "neuron")
TARGET_FIELDS = ("targets",)


@dataclass
class Recipe:
    """A manifest's contents as values."""

    kind: str
    model: str | None
    units: list[Unit] = field(default_factory=list)
    targets: list[Unit] = field(default_factory=list)
    objective: obj.Objective | None = None
    config: RenderConfig | CaricatureConfig | None = None
    seeds: list[int] = field(default_factory=list)
    parts: list[Recipe] = field(default_factory=list)
    """Manifests nested in this one (a comparison's runs)."""
    raw: dict[str, Any] = field(default_factory=dict)


def read_manifest(manifest: str | Path | Mapping[str, Any], model: Model | None = None, *,
                  loaded: dict[str, Model] | None = None) -> Recipe:
    """Parse a manifest (a path or its dict). Units and targets are validated against ``model``, or
    against the model the manifest says how to load (``model_spec``, else its zoo name); a model
    built with ``wrap`` can only be checked for syntax (pass it as ``model`` to validate fully). Anything that does not parse raises.
    ``loaded``: models already loaded, by name or spec (filled as they are loaded; share it to read
    many manifests without loading a model each time)."""
    data = _load(manifest)
    if "kind" not in data:
        raise NeuronscopeError("not a neuronscope manifest: it has no 'kind'")
    name = data.get("model")
    loaded = {} if loaded is None else loaded
    model = model if model is not None else _manifest_model(data, loaded)
    recipe = Recipe(data["kind"], name, raw=dict(data))
    for key in UNIT_FIELDS:
        values = data.get(key)
        if values is not None:
            recipe.units += [_unit(text, model) for text in ([values] if isinstance(values, str) else values)]
    if data["kind"] == "gallery":
        recipe.units += [_unit(text, model) for text in data.get("units", {})]
    for key in TARGET_FIELDS:
        recipe.targets += [_target(t, model) for t in data.get(key) or []]
    if isinstance(data.get("objective"), Mapping):
        recipe.objective = obj.from_spec(data["objective"])
    recipe.config = _config(data)
    recipe.seeds = [int(s) for s in data.get("seeds", [])]
    recipe.parts = [read_manifest(part, model if part.get("model") == name else None, loaded=loaded)
                    for part in data.get("runs", []) if isinstance(part, Mapping) and "kind" in part]
    return recipe


def rerender(manifest: str | Path | Mapping[str, Any], model: Model | None = None) -> Result:
    """Render again what a ``render`` manifest describes: ``render_units`` of its units with its
    samples and diversity, or ``render`` of its objective with its seeds and labels."""
    data = _load(manifest)
    if data.get("kind") != "render":
        raise NeuronscopeError(f"only render manifests can be re-rendered, this one is '{data.get('kind')}'")
    model = model if model is not None else _manifest_model(data, {}, required=True)
    recipe = read_manifest(data, model)
    if data.get("call") == "render_units":
        return render_units(model, recipe.units, recipe.config, samples=int(data["samples"]),
                            diversity=float(data["diversity"]))
    if recipe.objective is None:
        raise NeuronscopeError("this manifest's objective was a custom function (no spec), so it cannot be rebuilt")
    return render(model, recipe.objective, recipe.config, seeds=recipe.seeds, labels=data.get("labels"))


def _load(manifest: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(manifest, Mapping):
        return dict(manifest)
    path = Path(manifest)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise NeuronscopeError(f"cannot read the manifest {path}: {error}") from None


def _with_recorded(model: Model, derived: Mapping[str, Any]) -> Model:
    """``model`` with a manifest's derived layers: random directions made again from their seed,
    dictionary features loaded from their files."""
    random = {name: entry for name, entry in derived.items()
              if isinstance(entry, Mapping) and "random_directions_seed" in entry}
    for name, entry in random.items():
        model = with_random_directions(model, name.rpartition(".")[0], int(entry["random_directions_seed"]))
    features = {name: entry for name, entry in derived.items() if name not in random}
    return with_recorded_features(model, features) if features else model


def _manifest_model(data: Mapping[str, Any], loaded: dict[str, Model], required: bool = False) -> Model | None:
    """The model a manifest was made with: by its ``model_spec`` (how it was loaded), else by its
    zoo name; None (or, if ``required``, an error) when the manifest cannot say."""
    spec = data.get("model_spec")
    name = data.get("model")
    derived = data.get("derived_layers") or {}
    if isinstance(spec, Mapping) or name in available_models():
        key = json.dumps(dict(spec), sort_keys=True) if isinstance(spec, Mapping) else name
        if key not in loaded:
            loaded[key] = ModelSpec.from_dict(dict(spec)).load() if isinstance(spec, Mapping) else load(name)
        if not derived:
            return loaded[key]
        featured = json.dumps([key, derived], sort_keys=True)
        if featured not in loaded:
            loaded[featured] = _with_recorded(loaded[key], derived)
        return loaded[featured]
    if required:
        raise NeuronscopeError(f"model '{name}' is not in the zoo ({', '.join(available_models())}) and the manifest "
                               "has no model_spec; pass it as model=")
    return None


def _unit(text: Any, model: Model | None) -> Unit:
    if not isinstance(text, str):
        raise NeuronscopeError(f"a unit in a manifest must be a string like 'blocks.4.2:7', got {text!r}")
    if model is not None:
        return parse_unit(model, text)
    layer, _, rest = text.partition(":")
    channel, _, position = rest.partition("@")
    if " " in text or (rest and not channel.lstrip("-").isdigit()):
        raise NeuronscopeError(f"'{text}' is not a unit address (layer, layer:channel or layer:channel@x,y)")
    xy = tuple(int(v) for v in position.split(",")) if position else None
    return Unit(layer, int(channel) if channel else None, xy)


def _target(target: Any, model: Model | None) -> Unit:
    if model is not None:
        return parse_target(model, target)
    return _unit(target if isinstance(target, str) and ":" in target else f"logits:{target}", None)


def _config(data: Mapping[str, Any]) -> RenderConfig | CaricatureConfig | None:
    config = data.get("config")
    if data.get("kind") == "gallery":
        config = (data.get("settings") or {}).get("render")
        return RenderConfig.from_dict(config) if config else None
    if not isinstance(config, Mapping):
        return None
    if data["kind"] == "render":
        return RenderConfig.from_dict(config)
    if "caricature" in data["kind"]:
        return CaricatureConfig.from_dict(config)
    if "render" in config:  # configs that hold a render config (mechanics)
        return RenderConfig.from_dict(config["render"])
    return None
