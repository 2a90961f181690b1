"""The layer-similarity figure: heatmaps of layers of A (rows) x layers of B (columns), across depth."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from ..images import default_font

if TYPE_CHECKING:
    from .result import UnitMatches

VIRIDIS = ((68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
           (92, 200, 99), (170, 220, 50), (253, 231, 37))
"""Viridis at 0, 1/8, ..., 1: perceptually even, readable in grey and by colour-blind readers."""
MISSING = (200, 200, 200)
MARK = (230, 20, 60)
FONT = 16
SMALL = 14


def similarity_figure(matches: UnitMatches) -> Image.Image:
    """Two heatmaps side by side on one colour scale (0 to 1): linear CKA of every pair of
    layers, and the mean best-match correlation of A's units among B's layer's. Rows are A's
    layers, columns B's, both shallow to deep, labelled with their relative depth; each row's
    highest value is outlined."""
    rows = [f"{name}  d={d:.2f}" for name, d in zip(matches.layers_a, matches.depth_a)]
    cols = [(name, f"d={d:.2f}") for name, d in zip(matches.layers_b, matches.depth_b)]
    panels = [heatmap(matches.cka, rows, cols, "linear CKA"),
              heatmap(matches.mean_best, rows, cols, f"mean best-match correlation ({matches.model_a} units)")]
    bar = colour_bar(panels[0].height)
    title = (f"{matches.model_a} (rows, A) vs {matches.model_b} (columns, B): {matches.images} images; "
             "d = relative depth; outlined: each row's highest")
    font = default_font(FONT)
    gap = 24
    width = sum(p.width for p in panels) + bar.width + gap * (len(panels) + 1)
    width = max(width, int(_measure(title, font)) + 2 * gap)
    figure = Image.new("RGB", (width, panels[0].height + FONT + 2 * gap), "white")
    draw = ImageDraw.Draw(figure)
    draw.text((gap, gap // 2), title, fill="black", font=font)
    x = gap
    for panel in [*panels, bar]:
        figure.paste(panel, (x, FONT + gap + gap // 2))
        x += panel.width + gap
    return figure


def heatmap(values: np.ndarray, rows: Sequence[str], cols: Sequence[tuple[str, str]], title: str,
            low: float = 0.0, high: float = 1.0) -> Image.Image:
    """One labelled heatmap: a cell per value (its value written in it, NaN grey), row labels on
    the left, two-line column labels on top, the title above, each row's maximum outlined."""
    font, small = default_font(FONT), default_font(SMALL)
    label_w = int(max(_measure(r, font) for r in rows)) + 12
    cell_w = max(72, int(max(_measure(c[0], font) for c in cols)) + 12)
    cell_h = 44
    top = FONT + 10 + 2 * (FONT + 4) + 6
    image = Image.new("RGB", (label_w + cell_w * len(cols) + 4, top + cell_h * len(rows) + 4), "white")
    draw = ImageDraw.Draw(image)
    draw.text((label_w, 0), title, fill="black", font=font)
    for j, (name, depth) in enumerate(cols):
        x = label_w + j * cell_w + cell_w / 2
        draw.text((x, FONT + 10), name, fill="black", font=font, anchor="mt")
        draw.text((x, FONT + 10 + FONT + 4), depth, fill="dimgray", font=small, anchor="mt")
    best = [int(np.nanargmax(row)) if np.isfinite(row).any() else -1 for row in values]
    for i, label in enumerate(rows):
        y = top + i * cell_h
        draw.text((label_w - 8, y + cell_h / 2), label, fill="black", font=font, anchor="rm")
        for j in range(len(cols)):
            value = float(values[i, j])
            fill = MISSING if np.isnan(value) else colour((value - low) / (high - low))
            box = (label_w + j * cell_w, y, label_w + (j + 1) * cell_w - 1, y + cell_h - 1)
            draw.rectangle(box, fill=fill)
            text = "–" if np.isnan(value) else f"{value:.2f}"
            draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), text, font=font, anchor="mm",
                      fill="black" if sum(fill) > 380 else "white")
        if best[i] >= 0:
            x0 = label_w + best[i] * cell_w
            draw.rectangle((x0 + 1, y + 1, x0 + cell_w - 2, y + cell_h - 2), outline=MARK, width=3)
    return image


def colour_bar(height: int, low: float = 0.0, high: float = 1.0) -> Image.Image:
    """A vertical colour scale from ``low`` (bottom) to ``high`` (top) with five ticks."""
    font = default_font(SMALL)
    top, bottom = FONT + 10 + 2 * (FONT + 4) + 6, height - 4
    image = Image.new("RGB", (70, height), "white")
    draw = ImageDraw.Draw(image)
    for y in range(top, bottom):
        draw.line((0, y, 18, y), fill=colour((bottom - y) / max(1, bottom - top - 1)))
    for t in np.linspace(0, 1, 5):
        y = bottom - t * (bottom - top)
        draw.line((18, y, 23, y), fill="black")
        draw.text((26, y), f"{low + t * (high - low):.2f}", fill="black", font=font, anchor="lm")
    return image


def colour(t: float) -> tuple[int, int, int]:
    """Viridis at ``t`` in [0, 1] (clipped), as 8-bit RGB."""
    t = min(1.0, max(0.0, float(t))) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    f = t - i
    return tuple(round(a + (b - a) * f) for a, b in zip(VIRIDIS[i], VIRIDIS[i + 1]))


def _measure(text: str, font) -> float:
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font)
