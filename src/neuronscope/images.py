"""Turning image tensors into files and contact sheets (Pillow)."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import NeuronscopeError
from .manifest import atomic_write_bytes, write_json


def file_safe(text: str, limit: int = 80) -> str:
    """``text`` as part of a file name: letters, digits, ``-_.`` kept, everything else ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:limit]


def to_pil(image: torch.Tensor | np.ndarray) -> Image.Image:
    """A (C, H, W) tensor or (H, W, C) array in [0, 1] as an 8-bit RGB (or L) image."""
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy()
    else:
        array = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] not in (3, 4):
        array = array[:, :, :3] if array.shape[2] > 3 else array.mean(2)
    return Image.fromarray((array * 255 + 0.5).astype(np.uint8))


def save_png(path: str | Path, image: torch.Tensor | np.ndarray | Image.Image) -> Path:
    """Atomically save an image as PNG."""
    picture = image if isinstance(image, Image.Image) else to_pil(image)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def save_sheet(path: str | Path, sheet: Image.Image, manifest: dict) -> Path:
    """A result's picture as a PNG at ``path`` (which must end in .png) and its manifest beside it
    (same name, .json), each written atomically. Returns the PNG's path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise NeuronscopeError(f"a sheet is saved as a .png file, got '{path}'")
    write_json(path.with_suffix(".json"), manifest)
    return save_png(path, sheet)


DISPLAY_LIMIT = 1024
"""Longest side, in pixels, of the pictures notebooks show for results (``_repr_png_``)."""


def png_bytes(image: Image.Image, limit: int | None = DISPLAY_LIMIT) -> bytes:
    """``image`` as PNG bytes, shrunk (aspect kept) so that its longest side is at most ``limit``."""
    picture = image.convert("RGB")
    if limit is not None and max(picture.size) > limit:
        picture.thumbnail((limit, limit), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


class SheetDisplay:
    """Mixin: Jupyter shows a result as its picture, PNG at most ``DISPLAY_LIMIT`` px on the long side.

    The picture is ``preview()``, which is ``sheet()`` unless a result overrides it: results whose
    full sheet needs the model (to render) show a cheaper picture of what they already hold.
    """

    def preview(self) -> Image.Image:
        return self.sheet()

    def _repr_png_(self) -> bytes:
        return png_bytes(self.preview())


def contact_sheet(images: Sequence[torch.Tensor | np.ndarray | Image.Image], captions: Sequence[str] | None = None,
                  columns: int | None = None, cell: int | None = None, gap: int = 6,
                  title: str | None = None) -> Image.Image:
    """Images in a grid on white, each with its caption underneath, and an optional title."""
    pictures = [im if isinstance(im, Image.Image) else to_pil(im) for im in images]
    if not pictures:
        raise ValueError("a contact sheet needs at least one image")
    captions = list(captions) if captions is not None else [""] * len(pictures)
    columns = columns or min(8, len(pictures))
    aspect = pictures[0].width / pictures[0].height  # cells keep the first image's shape
    longest = cell or max(max(p.width, p.height) for p in pictures)
    cell_w, cell_h = (longest, round(longest / aspect)) if aspect >= 1 else (round(longest * aspect), longest)
    font = default_font(max(10, min(cell_w, cell_h) // 11))
    caption_h = (font.size + 6) if any(captions) else 0
    width = columns * (cell_w + gap) + gap
    title_lines = wrap_text(ImageDraw.Draw(Image.new("RGB", (1, 1))), title, font, width - 2 * gap) if title else []
    title_h = len(title_lines) * (font.size + 4) + 10 if title_lines else 0
    rows = -(-len(pictures) // columns)
    sheet = Image.new("RGB", (width, title_h + rows * (cell_h + caption_h + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for line, text in enumerate(title_lines):
        draw.text((gap, gap + line * (font.size + 4)), text, fill="black", font=font)
    for i, (picture, caption) in enumerate(zip(pictures, captions)):
        row, col = divmod(i, columns)
        x = gap + col * (cell_w + gap)
        y = title_h + gap + row * (cell_h + caption_h + gap)
        sheet.paste(picture.convert("RGB").resize((cell_w, cell_h), Image.Resampling.LANCZOS), (x, y))
        if caption:
            draw.text((x, y + cell_h + 2), fit_text(draw, caption, font, cell_w), fill="black", font=font)
    return sheet


def default_font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` (the fixed bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def wrap_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` broken into lines of whole words that fit in ``width`` pixels (a word longer than
    a line is shortened with an ellipsis)."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(fit_text(draw, word, font, width))
    return lines


def fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits in ``width`` pixels."""
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def heat_overlay(image: torch.Tensor, heat: torch.Tensor, color: tuple[float, float, float] = (1.0, 0.3, 0.1)) -> torch.Tensor:
    """(3, H, W) image dimmed, with a (h, w) map of non-negative values (scaled to its maximum)
    upsampled on top in ``color``."""
    import torch.nn.functional as F

    height, width = image.shape[-2:]
    scaled = heat.clamp(min=0) / heat.clamp(min=0).max().clamp(min=1e-8)
    up = F.interpolate(scaled[None, None].float(), size=(height, width), mode="bilinear", align_corners=False)[0]
    tint = torch.tensor(color).view(3, 1, 1) * up
    return (image.cpu() * (0.35 + 0.4 * up) + tint * 0.6).clamp(0, 1)


def factor_colors(k: int) -> list[tuple[float, float, float]]:
    """k evenly spaced, saturated hues."""
    import colorsys

    return [colorsys.hsv_to_rgb(g / k, 0.85, 1.0) for g in range(k)]


def factor_overlay(image: torch.Tensor, maps: torch.Tensor, colors: Sequence[tuple[float, float, float]]) -> torch.Tensor:
    """(3, H, W): the image dimmed and tinted by k non-negative maps (k, h, w): hue = which map
    dominates, brightness = how strong it is (each map scaled to its own maximum)."""
    import torch.nn.functional as F

    height, width = image.shape[-2:]
    maps = F.interpolate(maps.float()[None], size=(height, width), mode="bilinear", align_corners=False)[0].clamp(min=0)
    strength = maps / maps.flatten(1).max(1).values.clamp(min=1e-8).view(-1, 1, 1)
    tint = torch.einsum("khw,kc->chw", strength, torch.tensor(colors).float()) / strength.sum(0).clamp(min=1e-8)
    return (image.cpu() * 0.35 + tint * strength.max(0).values * 0.65).clamp(0, 1)


def flat_cells(picture: torch.Tensor, side: int = 192) -> torch.Tensor:
    """A small (3, h, w) map as flat squares (nearest neighbour, not smoothed), about ``side`` px across."""
    factor = max(1, side // max(picture.shape[-2:]))
    return picture.repeat_interleave(factor, -1).repeat_interleave(factor, -2)


def listing(items: Sequence[str], limit: int = 3) -> str:
    """``items`` joined by commas, cut after ``limit`` with an ellipsis (for one-line reprs)."""
    shown = ", ".join(items[:limit])
    return shown + (", …" if len(items) > limit else "")


DIVERGING = ((0.020, 0.443, 0.690), (0.573, 0.773, 0.871), (0.969, 0.969, 0.969), (0.957, 0.647, 0.510), (0.792, 0.0, 0.125))
"""Blue (negative) to white (zero) to red (positive), the palette of the Circuits weight figures."""


def diverging(values: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """(h, w) signed values as a (3, h, w) image, normalized by ``scale`` (default: max |value|)."""
    peak = scale if scale is not None else float(values.abs().max())
    t = (values / max(peak, 1e-12)).clamp(-1, 1) * 2 + 2  # -1..1 -> 0..4 along the palette
    palette = torch.tensor(DIVERGING)
    low = t.floor().clamp(0, 3).long()
    frac = (t - low).unsqueeze(-1)
    rgb = palette[low] * (1 - frac) + palette[(low + 1).clamp(max=4)] * frac
    return rgb.permute(2, 0, 1)
