"""Images: the real photos that ship inside scikit-image and scikit-learn, and loading any file.

Every image comes back as a float32 RGB array (H, W, 3) in [0, 1].
"""
from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import NeuronscopeError, did_you_mean


@dataclass(frozen=True)
class Photo:
    """A bundled photo: which installed package carries it, and what it shows."""

    name: str
    package: str
    path: str
    shows: str
    licence: str


PHOTOS = {
    p.name: p
    for p in (
        Photo("chelsea", "skimage", "data/chelsea.png", "a tabby cat", "CC0"),
        Photo("coffee", "skimage", "data/coffee.png", "a cup of espresso", "CC0"),
        Photo("astronaut", "skimage", "data/astronaut.png", "astronaut Eileen Collins", "public domain (NASA)"),
        Photo("rocket", "skimage", "data/rocket.jpg", "a Falcon 9 launch", "public domain (SpaceX)"),
        Photo("motorcycle", "skimage", "data/motorcycle_left.png", "a motorcycle (Middlebury stereo, left view)", "Middlebury stereo data"),
        Photo("camera", "skimage", "data/camera.png", "a cameraman with a tripod (greyscale)", "CC0"),
        Photo("coins", "skimage", "data/coins.png", "Greek coins (greyscale)", "no known copyright restrictions (Brooklyn Museum)"),
        Photo("horse", "skimage", "data/horse.png", "a horse silhouette (binary)", "CC0"),
        Photo("hubble", "skimage", "data/hubble_deep_field.jpg", "the Hubble deep field", "public domain (NASA)"),
        Photo("china", "sklearn", "datasets/images/china.jpg", "a Chinese palace", "CC-BY 2.0"),
        Photo("flower", "sklearn", "datasets/images/flower.jpg", "a flower with a bee", "CC-BY 2.0"),
    )
}
"""The bundled photos by name. All are read from the installed packages; nothing is downloaded."""

EXTRA_IMAGES = {
    p.name: p
    for p in (
        Photo("brick", "skimage", "data/brick.png", "a brick wall (greyscale texture)", "CC0 (CC0Textures)"),
        Photo("grass", "skimage", "data/grass.png", "grass (greyscale texture)", "CC0 (CC0Textures)"),
        Photo("gravel", "skimage", "data/gravel.png", "gravel (greyscale texture)", "CC0 (CC0Textures)"),
        Photo("clock", "skimage", "data/clock_motion.png", "a motion-blurred clock (greyscale)", "public domain (Stefan van der Walt)"),
        Photo("text", "skimage", "data/text.png", "text on a textured background (greyscale)", "public domain"),
        Photo("retina", "skimage", "data/retina.jpg", "a human retina", "CC0"),
        Photo("ihc", "skimage", "data/ihc.png", "immunohistochemical staining", "no known copyright restrictions"),
        Photo("cell", "skimage", "data/cell.png", "a cell floating in saline (greyscale)", "CC0"),
        Photo("microaneurysms", "skimage", "data/microaneurysms.png", "retinal microaneurysms (greyscale)", "CC0 (Andreas Maier)"),
    )
}
"""More images inside scikit-image, none of them a photo of the bundled set: what
``data.extra_source`` crops, for training where more variety helps (dictionaries); never shown
as photo pages, never among dataset examples unless a source names them."""


def photo_names() -> list[str]:
    """Names accepted by ``photo``."""
    return list(PHOTOS)


def photo_path(name: str) -> Path:
    """Where a bundled photo lies on disk."""
    entry = PHOTOS.get(name) or EXTRA_IMAGES.get(name)
    if entry is None:
        raise NeuronscopeError(f"unknown photo '{name}': {did_you_mean(name, PHOTOS)} (bundled: {', '.join(PHOTOS)})")
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise NeuronscopeError(f"photo '{name}' ships with the '{entry.package}' package, which is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / entry.path


def photo(name: str) -> np.ndarray:
    """A bundled photo as a float32 RGB array (H, W, 3) in [0, 1]."""
    return load_image(photo_path(name))


def photos(names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Several bundled photos by name (default: all of them)."""
    return {name: photo(name) for name in (names or photo_names())}


def load_image(source: str | Path) -> np.ndarray:
    """Load any image file (jpg, png, webp, tiff, ...; greyscale, palette, RGBA, 16-bit) as a
    float32 RGB array (H, W, 3) in [0, 1]. Transparent pixels are composited over white.

    A bundled photo name (``"chelsea"``) is accepted where no such file exists.
    """
    path = Path(source)
    if not path.exists():
        if str(source) in PHOTOS:
            return photo(str(source))
        hint = f"{did_you_mean(str(source), PHOTOS)} " if path.suffix == "" and len(path.parts) == 1 else ""
        raise NeuronscopeError(f"image file not found: '{source}' ({hint}bundled photos: {', '.join(PHOTOS)})")
    if path.is_dir():
        raise NeuronscopeError(f"'{source}' is a directory, not an image file")
    try:
        with Image.open(path) as image:
            image.load()
            return _to_rgb_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise NeuronscopeError(f"cannot read '{source}' as an image ({type(error).__name__}: {error})") from None


def resolve_image(source: str | Path | np.ndarray) -> np.ndarray:
    """An array as it is, or a path / bundled photo name loaded with ``load_image``."""
    if isinstance(source, np.ndarray):
        return source
    return load_image(source)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Image file contents (e.g. a tar member) as ``load_image`` would give the file; ``name``
    appears in the error when the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return _to_rgb_array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise NeuronscopeError(f"cannot read '{name}' as an image ({type(error).__name__}: {error})") from None


def as_rgb_array(image) -> np.ndarray:
    """A PIL image, an (H, W, 3|1) or (H, W) array (uint8 0-255 or float 0-1), or a (3|1, H, W)
    tensor (a torchvision-style dataset item) as a float32 RGB array (H, W, 3) in [0, 1]."""
    if isinstance(image, Image.Image):
        return _to_rgb_array(image)
    if hasattr(image, "detach"):  # a torch tensor, channels first
        image = image.detach().cpu().float().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[2] not in (1, 3):
            image = image.transpose(1, 2, 0)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise NeuronscopeError(f"an image must be (H, W), (H, W, 3) or (3, H, W); got shape {array.shape}")
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.clip(array.astype(np.float32), 0.0, 1.0)
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = np.clip(array / peak, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


BUNDLED_LATTICE: tuple[tuple[float, int], ...] = ((1.0, 1), (0.7, 2), (0.5, 3), (0.35, 4))
"""(scale, grid) pairs of the bundled crops: per photo, a grid x grid lattice of square crops whose
side is ``scale`` times the photo's short side; 1 + 4 + 9 + 16 = 30 crops per photo."""


def crop_table(names: Sequence[str] | None = None,
               lattice: Sequence[tuple[float, int]] = BUNDLED_LATTICE) -> dict[str, tuple[str, float, int, int]]:
    """The bundled crops, the one definition behind ``photo_crops`` and ``data.bundled_source``:
    key (``"chelsea@0.5,4"``: photo, scale, crop index in row-major order) -> (photo, scale, grid, index),
    photo by photo. Unknown photos and bad lattice entries raise a NeuronscopeError."""
    names = list(names) if names is not None else photo_names()
    for name in names:
        if name not in PHOTOS and name not in EXTRA_IMAGES:
            raise NeuronscopeError(f"unknown photo '{name}': {did_you_mean(name, PHOTOS)} (bundled: {', '.join(PHOTOS)})")
    if not names or not lattice:
        raise NeuronscopeError("the bundled crops need at least one photo and one (scale, grid) pair")
    for scale, grid in lattice:
        if not 0 < scale <= 1 or grid < 1:
            raise NeuronscopeError(f"bad crop lattice entry ({scale}, {grid}): scale must be in (0, 1], grid >= 1")
    table = [(n, float(s), int(g)) for n in names for s, g in lattice]
    return {f"{n}@{s:g},{i}": (n, s, g, i) for n, s, g in table for i in range(g * g)}


def lattice_crop(image: np.ndarray, scale: float, grid: int, index: int) -> np.ndarray:
    """Crop ``index`` (row-major) of the ``grid`` x ``grid`` lattice of squares of side ``scale``
    times the short side, spread evenly from corner to corner (centred when grid is 1)."""
    height, width = image.shape[:2]
    side = max(1, round(min(height, width) * scale))
    row, col = divmod(index, grid)
    fy, fx = (row / (grid - 1), col / (grid - 1)) if grid > 1 else (0.5, 0.5)
    top, left = round((height - side) * fy), round((width - side) * fx)
    return np.ascontiguousarray(image[top : top + side, left : left + side])


def photo_crops(names: list[str] | None = None, scales: tuple[float, ...] | None = None,
                grid: int = 3) -> Iterator[tuple[str, np.ndarray]]:
    """Deterministic square crops of the bundled photos, for "natural image" statistics.

    With the defaults these are the crops of ``data.bundled_source``, which dataset examples and
    the gallery use too (one definition, ``crop_table``): lattice ``BUNDLED_LATTICE``, 30 crops
    per photo at scales 1, 0.7, 0.5 and 0.35, 330 in all. Given ``scales``, per scale a ``grid`` x
    ``grid`` lattice of square crops with side ``scale`` times the short side (one centred crop at
    scale 1). Yields (``"name@scale,index"``, crop) with crops as float32 RGB arrays; an unreadable
    photo raises.
    """
    lattice = BUNDLED_LATTICE if scales is None else tuple((s, 1 if s >= 1.0 else grid) for s in scales)
    current: tuple[str, np.ndarray] | None = None
    for key, (name, scale, cells, index) in crop_table(names or None, lattice).items():
        if current is None or current[0] != name:
            current = (name, photo(name))
        yield key, lattice_crop(current[1], scale, cells, index)
