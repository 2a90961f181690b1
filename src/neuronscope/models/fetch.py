"""Explicit, opt-in downloads of zoo weights that no wheel ships, and where they are kept.

Nothing on a default path downloads: ``fetch`` runs only when asked (``neuronscope fetch MODEL``).
A download goes to a temporary file next to its destination, is verified (the published sha256
prefix when the known URL was used, then a strict load into the architecture), and only then is
renamed into place, so an interrupted or wrong download never leaves a file that looks installed.
Downloaded weights live in ``$NEURONSCOPE_HOME/weights/<model>.pth`` (default
``~/.cache/neuronscope/weights/``), where the zoo looks for them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import NeuronscopeError, did_you_mean
from . import inception_v1
from .weights import sha256_of

HOME_VARIABLE = "NEURONSCOPE_HOME"
TIMEOUT_S = 60


def weights_home() -> Path:
    """The folder of downloaded weights: ``$NEURONSCOPE_HOME/weights`` (default ``~/.cache/neuronscope/weights``)."""
    home = os.environ.get(HOME_VARIABLE)
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "neuronscope") / "weights"


def weights_path(name: str) -> Path:
    """Where the downloaded weights of zoo model ``name`` are kept (whether or not they exist)."""
    return weights_home() / f"{name}.pth"


def cached_weights(name: str) -> Path | None:
    """The downloaded weights of ``name``, or None when they are not on this machine."""
    path = weights_path(name)
    return path if path.is_file() else None


def fetchable() -> list[str]:
    """The zoo models whose weights ``fetch`` knows how to download."""
    return list(inception_v1.VARIANTS)


def fetch(name: str, url: str | None = None, dest: str | Path | None = None) -> Path:
    """Download the weights of zoo model ``name`` (from its known URL, or ``url``: http(s):// or
    file://) to ``dest`` (default: ``weights_path(name)``), verified before it is put in place.
    Returns the installed file. Raises a one-line NeuronscopeError when offline or when the file
    is not the model's weights (nothing is installed then)."""
    variant = inception_v1.VARIANTS.get(name)
    if variant is None:
        raise NeuronscopeError(f"no download is known for '{name}': {did_you_mean(name, fetchable())} "
                               f"(fetch knows {', '.join(fetchable())})")
    source = url or variant.url
    target = Path(dest).expanduser() if dest is not None else weights_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(handle)
    part = Path(temporary)
    try:
        _download(source, part, name, target)
        if url is None and variant.sha256_prefix and not sha256_of(part).startswith(variant.sha256_prefix):
            raise NeuronscopeError(f"the file downloaded from {source} is corrupt: its sha256 {sha256_of(part)[:8]} "
                                   f"is not the published {variant.sha256_prefix}; try again")
        try:
            inception_v1.build(name, part)
        except NeuronscopeError as error:
            raise NeuronscopeError(f"the file downloaded from {source} is not {name}'s weights ({error})") from None
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _download(url: str, path: Path, name: str, target: Path) -> None:
    """Copy ``url`` to ``path``; any failure to reach it is one line that says what else to do."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise NeuronscopeError(
            f"cannot download {name}'s weights from {url} ({str(reason).splitlines()[0][:120]}); offline? "
            f"get the file elsewhere and pass --weights FILE, or copy it to {target}") from None
