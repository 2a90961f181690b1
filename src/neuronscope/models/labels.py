"""ImageNet-1k class names, shipped with the package, and lookup of a class by name."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import NeuronscopeError, did_you_mean


@dataclass(frozen=True)
class Labels:
    """A model's class names by output index, and optionally every name of each class (the first
    is the display name) that ``index`` also accepts."""

    names: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        if self.synonyms is not None:
            object.__setattr__(self, "synonyms", tuple(tuple(s) for s in self.synonyms))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """The class index for a number, a display name or a synonym (see ``class_index``)."""
        return class_index(name, self.names, self.synonyms)


@lru_cache(maxsize=1)
def imagenet_synonyms() -> tuple[tuple[str, ...], ...]:
    """For each of the 1000 classes, its names (the first is the display name)."""
    text = (resources.files("neuronscope") / "assets" / "imagenet_labels.json").read_text()
    return tuple(tuple(names) for names in json.loads(text))


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k display names, by class index (281 = 'tabby')."""
    return tuple(names[0] for names in imagenet_synonyms())


def class_index(name: str, labels: tuple[str, ...], synonyms: tuple[tuple[str, ...], ...] | None = None) -> int:
    """The class index for ``name``: a number, a display name or any synonym (case-insensitive).

    Raises NeuronscopeError when the name is unknown (with the closest names) or ambiguous
    (ImageNet has two 'crane' classes, for example).
    """
    text = name.strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(labels):
            raise NeuronscopeError(f"class {index} is out of range: valid classes are 0..{len(labels) - 1}")
        return index
    names_per_class = synonyms or tuple((label,) for label in labels)
    wanted = text.lower()
    matches = [i for i, names in enumerate(names_per_class) if any(n.lower() == wanted for n in names)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        listed = ", ".join(f"{i} ({labels[i]})" for i in matches)
        raise NeuronscopeError(f"class name '{name}' is ambiguous: it names classes {listed}; use the index")
    every_name = sorted({n for names in names_per_class for n in names})
    raise NeuronscopeError(f"unknown class '{name}': {did_you_mean(text, every_name)}")
