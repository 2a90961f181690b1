"""Output files: atomic, readable by others, with manifests; contact sheets keep the image shape."""
import json
import stat

import torch

from neuronscope.images import contact_sheet, save_png
from neuronscope.manifest import build_manifest, write_json


def test_atomic_writes_leave_no_temporary_files_and_are_world_readable(tmp_path):
    png = save_png(tmp_path / "a" / "image.png", torch.rand(3, 8, 8))
    manifest = write_json(tmp_path / "a" / "manifest.json", build_manifest("test", seeds=(1, 2), path=tmp_path))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["image.png", "manifest.json"]
    for path in (png, manifest):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    data = json.loads(manifest.read_text())
    assert data["kind"] == "test" and data["seeds"] == [1, 2] and "torch" in data["versions"]


def test_contact_sheets_keep_the_aspect_ratio_of_wide_images():
    wide = [torch.rand(3, 20, 40) for _ in range(3)]
    sheet = contact_sheet(wide, ["a", "b", "c"], columns=3, cell=80)
    assert sheet.width > 3 * 80 and sheet.height < 80  # cells are 80 x 40 plus captions
