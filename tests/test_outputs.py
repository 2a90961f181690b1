"""Output files: atomic, readable by others, with manifests; contact sheets keep the image shape."""
import json
import stat

import numpy as np
import torch

from neuronscope.images import contact_sheet, save_png
from neuronscope.manifest import build_manifest, write_json

GAP = 6
"""Pixels between the cells of a contact sheet (``contact_sheet``'s default gap)."""


def test_atomic_writes_leave_no_temporary_files_and_are_world_readable(tmp_path):
    png = save_png(tmp_path / "a" / "image.png", torch.rand(3, 8, 8))
    manifest = write_json(tmp_path / "a" / "manifest.json", build_manifest("test", seeds=(1, 2), path=tmp_path))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["image.png", "manifest.json"]
    for path in (png, manifest):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    data = json.loads(manifest.read_text())
    assert data["kind"] == "test" and data["seeds"] == [1, 2] and "torch" in data["versions"]


def test_contact_sheets_keep_the_aspect_ratio_of_wide_images():
    """Three 40 x 20 images, each a left colour and a right colour, in cells of 80 x 40: every
    cell shows its own image, in order, stretched by 2 in both directions, on white gaps."""
    colours = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]],
                            [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]])  # (image, half, rgb)
    wide = [torch.cat([left.view(3, 1, 1).expand(3, 20, 20), right.view(3, 1, 1).expand(3, 20, 20)], dim=2)
            for left, right in colours]
    sheet = contact_sheet(wide, ["a", "b", "c"], columns=3, cell=80)
    assert sheet.width == 3 * (80 + GAP) + GAP and 40 < sheet.height < 80  # cells are 80 x 40 plus captions
    pixels = np.asarray(sheet.convert("RGB"), dtype=np.float64) / 255
    for i, (left, right) in enumerate(colours.numpy()):
        x = GAP + i * (80 + GAP)
        cell = pixels[GAP : GAP + 40, x : x + 80]
        np.testing.assert_allclose(cell[4:-4, 4:36], np.broadcast_to(left, (32, 32, 3)), atol=2 / 255)
        np.testing.assert_allclose(cell[4:-4, 44:76], np.broadcast_to(right, (32, 32, 3)), atol=2 / 255)
        assert (pixels[:, x - GAP : x] == 1).all()  # the white gap before the cell
    assert (pixels[:GAP] == 1).all() and (pixels[:, -GAP:] == 1).all()


def test_a_long_title_wraps_onto_lines_inside_the_sheet():
    """A title wider than the sheet is broken at words onto more lines, every line inside the
    sheet, and the cells move down below it."""
    from PIL import ImageDraw

    from neuronscope.images import default_font, wrap_text

    images = [torch.zeros(3, 20, 20)] * 2
    title = "efficientnet_lite0: best and worst units by two-choice score (judged by lite2; 0.5 = chance, uncalibrated)"
    short, long = contact_sheet(images, columns=2, cell=96, title="a"), contact_sheet(images, columns=2, cell=96, title=title)
    font = default_font(max(10, 96 // 11))
    draw = ImageDraw.Draw(long)
    lines = wrap_text(draw, title, font, long.width - 2 * GAP)
    assert len(lines) >= 3 and " ".join(lines) == title
    assert all(draw.textlength(line, font=font) <= long.width - 2 * GAP for line in lines)
    assert long.height == short.height + (len(lines) - 1) * (font.size + 4)
    pixels = np.asarray(long.convert("RGB"))
    assert (pixels[:, -GAP:] == 255).all()  # nothing drawn into the right margin
