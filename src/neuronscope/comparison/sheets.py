"""The sheet of matched units: a unit of A and its best match in B, side by side, each as its
feature visualization and its top dataset examples, with their correlation."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from ..data.sources import ImageSource, bundled_source
from ..errors import NeuronscopeError
from ..examples.inputs import ExampleImages
from ..examples.results import ExamplesConfig, LayerExamples
from ..examples.topk import ExamplesPass, crop_box
from ..featurevis.render import RenderConfig, render_units
from ..images import SheetDisplay, default_font, to_pil
from ..models.model import Model
from ..stream import PassConfig, stream
from .heatmap import FONT, SMALL

if TYPE_CHECKING:
    from .result import UnitMatches


@dataclass(frozen=True)
class SheetConfig:
    """How the sheet of matched units is made.

    Attributes:
        steps: optimization steps per feature visualization (fewer than a gallery's 128-256 is fine here).
        size: pixels of each feature visualization and example crop.
        examples: top dataset examples per unit.
        seed: seed of the first feature visualization.
        progress: show progress bars.
    """

    steps: int = 128
    size: int = 128
    examples: int = 3
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class Pair:
    """A unit of A, its best match in B and their correlation."""

    unit_a: str
    unit_b: str
    correlation: float


def pick_units(matches: UnitMatches, units: Sequence[str] | int = 4) -> list[Pair]:
    """The pairs a sheet shows. ``units`` an int N: the N units of A's middle layer (of
    ``layers_a``) best matched in B's layer at the nearest relative depth; a list of A's units
    (``"blocks.4.2:17"``): each with its best match in B's layer nearest its own layer's depth."""
    if isinstance(units, int | np.integer):
        if units < 1:
            raise NeuronscopeError(f"the sheet needs at least one unit, got {units}")
        layer_a = matches.layers_a[len(matches.layers_a) // 2]
        layer_b = matches.matched_layer(layer_a)
        index, values = matches.best(layer_a, layer_b, k=1)
        order = [int(c) for c in np.argsort(-np.nan_to_num(values[:, 0], nan=-np.inf), kind="stable")
                 if index[c, 0] >= 0][:int(units)]
        return [Pair(f"{layer_a}:{c}", f"{layer_b}:{int(index[c, 0])}", float(values[c, 0])) for c in order]
    pairs = []
    for unit in units:
        layer_a = unit.rpartition(":")[0]
        layer_b = matches.matched_layer(layer_a)
        found = matches.matches(unit, k=1)[layer_b]
        if not found:
            raise NeuronscopeError(f"unit {unit} of {matches.model_a} is dead (constant over the data): it has no match")
        pairs.append(Pair(unit, f"{layer_b}:{found[0][0]}", found[0][1]))
    if not pairs:
        raise NeuronscopeError("no units given for the sheet")
    return pairs


@dataclass
class MatchedUnits(SheetDisplay):
    """Matched units side by side, ready to draw: for each pair, A's unit and its match in B, each
    as its feature visualization and top dataset examples (PIL images of ``config.size`` px)."""

    model_a: str
    model_b: str
    pairs: list[Pair]
    side_a: list[list[Image.Image]]
    side_b: list[list[Image.Image]]
    config: SheetConfig

    def sheet(self) -> Image.Image:
        """One row per pair: A's unit, then its match in B, headed by both addresses and their correlation."""
        return _compose(self.model_a, self.model_b, self.pairs, self.side_a, self.side_b, self.config)


def matched_units(model_a: Model, model_b: Model, matches: UnitMatches, units: Sequence[str] | int = 4,
                  source: ImageSource | None = None, config: SheetConfig | None = None,
                  examples: tuple[dict[str, LayerExamples], dict[str, LayerExamples]] | None = None) -> MatchedUnits:
    """The pairs ``pick_units`` chooses, each unit rendered and with its top dataset examples from
    ``source`` (default: the bundled crops): ``examples`` (both models' ``dataset_examples`` of the
    layers involved, e.g. from the matching's own pass), or one pass over ``source`` for both."""
    config = config or SheetConfig()
    pairs = pick_units(matches, units)
    source = source if source is not None else bundled_source()
    if examples is None:
        layers = [list(dict.fromkeys(u.rpartition(":")[0] for u in side)) for side in
                  ([p.unit_a for p in pairs], [p.unit_b for p in pairs])]
        found = [ExamplesPass(m, source, names, ExamplesConfig(k=config.examples, progress=config.progress))
                 for m, names in zip((model_a, model_b), layers)]
        result = stream(source, [f.accumulator for f in found], PassConfig(progress=config.progress),
                        what=f"examples {model_a.name} / {model_b.name}")
        for f in found:
            f.finish(result)
        examples = (found[0].results, found[1].results)
    images = ExampleImages(source)
    side_a = _side(model_a, [p.unit_a for p in pairs], examples[0], images, config)
    side_b = _side(model_b, [p.unit_b for p in pairs], examples[1], images, config)
    return MatchedUnits(model_a.name, model_b.name, pairs, side_a, side_b, config)


def _side(model: Model, units: list[str], examples: dict[str, LayerExamples], images: ExampleImages,
          config: SheetConfig) -> list[list[Image.Image]]:
    """For each unit: its feature visualization, then its top examples (PIL images, ``size`` px)."""
    render = RenderConfig(steps=config.steps, size=config.size, seed=config.seed, progress=config.progress)
    pictures = render_units(model, list(dict.fromkeys(units)), render)
    by_unit = dict(zip(dict.fromkeys(units), pictures.images))
    rows = []
    for unit in units:
        layer, _, channel = unit.rpartition(":")
        crops = [to_pil(crop_box(images.example_image(model, ex.key, ex.input_size), ex.box, size=config.size))
                 for ex in examples[layer].top(int(channel))[:config.examples]]
        rows.append([to_pil(by_unit[unit]).resize((config.size, config.size)), *crops])
    return rows


def _compose(name_a: str, name_b: str, pairs: Sequence[Pair], side_a, side_b, config: SheetConfig) -> Image.Image:
    size, gap, middle = config.size, 6, 36
    font, small = default_font(FONT), default_font(SMALL)
    per_side = 1 + config.examples
    side_w = per_side * (size + gap)
    head_h, row_head = 2 * (FONT + 8), FONT + 10
    width = 2 * side_w + middle + 2 * gap
    height = head_h + len(pairs) * (row_head + size + gap) + gap
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, name in enumerate((name_a, name_b)):
        x = gap + k * (side_w + middle)
        draw.text((x, 4), f"{'AB'[k]}: {name}", fill="black", font=font)
        draw.text((x, FONT + 10), "feature visualization", fill="dimgray", font=small)
        draw.text((x + size + gap, FONT + 10), f"top {config.examples} dataset examples", fill="dimgray", font=small)
    for i, (pair, row_a, row_b) in enumerate(zip(pairs, side_a, side_b)):
        y = head_h + i * (row_head + size + gap)
        draw.text((gap, y + 2), pair.unit_a, fill="black", font=font)
        draw.text((gap + side_w + middle, y + 2), f"{pair.unit_b}   best match, r = {pair.correlation:.3f}",
                  fill="black", font=font)
        line_x = gap + side_w + middle / 2 - gap / 2
        draw.line((line_x, y + row_head, line_x, y + row_head + size), fill="lightgray", width=2)
        for k, row in enumerate((row_a, row_b)):
            x0 = gap + k * (side_w + middle)
            for j, picture in enumerate(row):
                sheet.paste(picture.convert("RGB"), (x0 + j * (size + gap), y + row_head))
    return sheet
