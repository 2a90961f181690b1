"""The `neuronscope` command, through its entry point."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from neuronscope.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuronscope: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_models_lists_the_zoo(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


def test_layers_prints_name_kind_channels_and_size(capsys):
    code, out, _ = run(capsys, "layers", "efficientnet_lite0")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert rows["blocks.4.2"][1:] == ["block", "112", "14x14"]
    assert rows["act1"][1:] == ["activation", "32", "112x112"]
    assert rows["logits"][1:] == ["logits", "1000", "-"]
    code, out, _ = run(capsys, "layers", "efficientnet_lite0", "--all")
    assert code == 0 and "blocks.3.1.conv_dw" in out and "depthwise conv" in out


def test_classify_a_bundled_photo_and_a_file(capsys, tmp_path):
    path = tmp_path / "cup.jpg"
    Image.fromarray((np.asarray(Image.open(_photo_file("coffee"))))).save(path, quality=95)
    code, out, _ = run(capsys, "classify", "chelsea", str(path), "--top", "3")
    assert code == 0
    blocks = out.split(str(path))
    chelsea_rows = [line.split() for line in blocks[0].splitlines()[2:5]]
    assert int(chelsea_rows[0][-2]) in {281, 282, 285}
    coffee_first = blocks[1].splitlines()[2].split()
    assert coffee_first[1:3] == ["espresso", "967"] and float(coffee_first[3]) > 0.5


def test_activations_of_units(capsys):
    code, out, _ = run(capsys, "activations", "chelsea", "logits:tabby", "blocks.4.2:17@3,4")
    assert code == 0 and "logits:281" in out and "blocks.4.2:17@3,4" in out


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["layers", "efficientnet_lite7"], ["unknown model 'efficientnet_lite7'", "did you mean"]),
        (["classify", "chelsea", "--model", "resnet"], ["unknown model 'resnet'"]),
        (["activations", "chelsea", "blocks.4.9:1"], ["unknown layer 'blocks.4.9'", "did you mean 'blocks.4.0'"]),
        (["activations", "chelsea", "blocks.4.2:999"], ["channel 999 is out of range", "0..111"]),
        (["classify", "/no/such/photo.jpg"], ["image file not found: '/no/such/photo.jpg'"]),
        (["classify", "chelsae"], ["did you mean 'chelsea'"]),
    ],
)
def test_errors_are_one_clear_line_with_exit_code_2(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_a_corrupt_image_file_is_one_clear_line(capsys, tmp_path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    code, _, err = run(capsys, "classify", str(corrupt))
    assert_one_line_error(code, err, "cannot read", "broken.png")


def test_the_installed_console_script_prints_no_traceback():
    script = shutil.which("neuronscope") or str(__import__("pathlib").Path(sys.executable).with_name("neuronscope"))
    result = subprocess.run([script, "activations", "chelsea", "blocks.9:1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("neuronscope: error: unknown layer 'blocks.9'") and "Traceback" not in result.stderr


def _photo_file(name):
    from neuronscope.data.photos import photo_path

    return photo_path(name)


def test_render_writes_images_a_sheet_and_a_manifest(capsys, tmp_path):
    out = tmp_path / "render"
    code, stdout, _ = run(capsys, "render", "efficientnet_lite0", "blocks.3.0:2", "logits:tabby", "-o", str(out),
                          "--steps", "4", "--size", "32", "--no-progress")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["000_blocks.3.0_2.png", "001_logits_281_tabby.png", "manifest.json", "sheet.png"]
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    assert manifest["config"]["steps"] == 4 and manifest["units"] == ["blocks.3.0:2", "logits:281 tabby"]
    assert "sheet.png" in stdout


def test_render_layer_writes_a_contact_sheet_with_a_manifest(capsys, tmp_path):
    sheet = tmp_path / "sheet.png"
    code, _, _ = run(capsys, "render-layer", "efficientnet_lite0", "blocks.2.1", "--channels", "0:3", "-o", str(sheet),
                     "--steps", "3", "--size", "32", "--no-progress")
    assert code == 0
    assert Image.open(sheet).size[0] > 3 * 32
    assert __import__("json").loads(sheet.with_suffix(".json").read_text())["units"] == ["blocks.2.1:0", "blocks.2.1:1", "blocks.2.1:2"]


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["render", "efficientnet_lite0", "blocks.3.0:999", "-o", "x"], ["channel 999 is out of range", "0..79"]),
        (["render", "efficientnet_lite0", "blockz.3.0:1", "-o", "x"], ["unknown layer 'blockz.3.0'", "did you mean"]),
        (["render", "efficientnet_lite0", "blocks.3.0:1", "-o", "x", "--steps", "0"], ["steps must be a positive integer"]),
        (["render", "efficientnet_lite0", "blocks.3.0:1", "-o", "x", "--size", "4"], ["size must be an integer of at least 16"]),
        (["render", "efficientnet_lite0", "blocks.3.0:1", "-o", "x", "--param", "cppn"], ["unknown parameterization 'cppn'"]),
        (["render-layer", "efficientnet_lite0", "blocks.2.1", "--channels", "38:45", "-o", "s.png"], ["out of range", "0..39"]),
        (["render-layer", "efficientnet_lite0", "blocks.2.1", "--channels", "a-b", "-o", "s.png"], ["--channels must look like"]),
    ],
)
def test_render_errors_are_one_clear_line(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_caricature_writes_a_sheet_and_a_manifest(capsys, tmp_path):
    sheet = tmp_path / "car.png"
    code, out, _ = run(capsys, "caricature", "chelsea", "--layers", "blocks.2.1,blocks.4.2", "--steps", "3",
                       "--size", "48", "-o", str(sheet), "--no-progress")
    assert code == 0 and "blocks.4.2  cos to input" in out
    assert __import__("json").loads(sheet.with_suffix(".json").read_text())["layers"] == ["blocks.2.1", "blocks.4.2"]
    code, _, _ = run(capsys, "caricature", "chelsea", "--model", "efficientnet_lite0", "--model", "efficientnet_lite1",
                     "--layers", "blocks.3.1", "--steps", "2", "--size", "48", "-o", str(sheet), "--no-progress")
    assert code == 0 and len(__import__("json").loads(sheet.with_suffix(".json").read_text())["runs"]) == 2


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["caricature", "chelsea", "--layers", "blocks.9.9", "-o", "c.png"], ["unknown layer 'blocks.9.9'"]),
        (["caricature", "nope.jpg", "--layers", "blocks.2.1", "-o", "c.png"], ["image file not found: 'nope.jpg'"]),
        (["caricature", "chelsea", "--layers", "blocks.2.1", "--class", "tabbby", "-o", "c.png"], ["unknown class 'tabbby'"]),
    ],
)
def test_caricature_errors_are_one_clear_line(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_attribute_and_groups_write_pictures_and_manifests(capsys, tmp_path):
    picture = tmp_path / "attribution.png"
    code, out, err = run(capsys, "attribute", "chelsea", "--top", "2", "-o", str(picture))
    assert code == 0 and picture.exists() and err == ""
    manifest = __import__("json").loads(picture.with_suffix(".json").read_text())
    assert manifest["layer"] == "act2" and manifest["logit_agreement"] > 0.99
    code, _, err = run(capsys, "attribute", "chelsea", "--layer", "blocks.4.2", "--classes", "tabby", "-o", str(picture))
    assert code == 0 and "agree poorly with the logits" in err
    groups = tmp_path / "groups.png"
    code, out, _ = run(capsys, "groups", "chelsea", "--k", "3", "--steps", "2", "-o", str(groups), "--no-progress")
    assert code == 0 and "3 groups at blocks.4.2" in out
    assert len(__import__("json").loads(groups.with_suffix(".json").read_text())["attribution_to_top_class"]) == 3


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["attribute", "chelsea", "--classes", "tabbby", "-o", "a.png"], ["unknown class 'tabbby'"]),
        (["attribute", "chelsea", "--layer", "logits", "-o", "a.png"], ["no spatial extent"]),
        (["groups", "chelsea", "--k", "500", "-o", "g.png"], ["k must be in 1..112"]),
    ],
)
def test_attribution_errors_are_one_clear_line(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_dictionary_and_grid_write_pictures_and_manifests(capsys, tmp_path):
    out = tmp_path / "dictionary.png"
    code, _, _ = run(capsys, "dictionary", "chelsea", "--steps", "2", "--cache", str(tmp_path / "cache"), "-o", str(out), "--no-progress")
    assert code == 0 and out.exists() and out.with_suffix(".json").exists()
    grid = tmp_path / "grid.png"
    code, _, _ = run(capsys, "grid", "chelsea", "--steps", "2", "-o", str(grid), "--no-progress")
    assert code == 0 and __import__("json").loads(grid.with_suffix(".json").read_text())["layer"] == "blocks.5.1"


def test_weights_shows_the_top_inputs_of_a_unit(capsys, tmp_path):
    out = tmp_path / "weights.png"
    code, stdout, _ = run(capsys, "weights", "efficientnet_lite0", "blocks.4.2:6", "--from", "blocks.3.2", "--top", "3",
                          "--steps", "2", "-o", str(out), "--no-progress")
    assert code == 0 and len(stdout.strip().splitlines()) == 4 and out.exists()
    code, _, err = run(capsys, "weights", "efficientnet_lite0", "blocks.3.1:2", "--from", "blocks.4.2", "-o", str(out))
    assert_one_line_error(code, err, "must come after 'blocks.4.2'")


def test_mechanics_writes_a_decomposition_sheet_and_a_manifest(capsys, tmp_path):
    out = tmp_path / "mechanics.png"
    code, stdout, _ = run(capsys, "mechanics", "efficientnet_lite0", "blocks.4.0:17", "--image", "chelsea", "--steps", "2",
                          "-o", str(out), "--no-progress")
    manifest = __import__("json").loads(out.with_suffix(".json").read_text())
    assert code == 0 and out.exists() and "= linearized" in stdout
    assert manifest["source"] == "blocks.3.2" and manifest["window"] == 5 and manifest["method"] == "weights"
    assert manifest["bias"] + sum(map(sum, manifest["contribution_per_cell"])) == pytest.approx(manifest["linearized"], rel=1e-4)
    views = tmp_path / "views.png"
    code, _, _ = run(capsys, "views", "efficientnet_lite0", "blocks.4.2:6", "--steps", "2", "-o", str(views), "--no-progress")
    assert code == 0 and views.exists() and views.with_suffix(".json").exists()


@pytest.mark.parametrize("argv, fragments", [
    (["mechanics", "efficientnet_lite0", "blocks.3.1:2", "--from", "blocks.4.2", "-o", "x.png"], ["must come after 'blocks.4.2'"]),
    (["mechanics", "efficientnet_lite0", "blocks.4.0:17", "--from", "blocks.3.x", "-o", "x.png"], ["did you mean", "blocks.3.2"]),
    (["mechanics", "efficientnet_lite0", "blocks.4.0:17", "--window", "3", "-o", "x.png"], ["window 3 is too small", "at least 5"]),
    (["mechanics", "efficientnet_lite0", "blocks.4.0:17", "--method", "optimise", "-o", "x.png"], ["did you mean 'optimize'"]),
    (["views", "efficientnet_lite0", "logits:tabby", "-o", "x.png"], ["channel of a spatial layer"]),
])
def test_mechanics_errors_are_one_clear_line(capsys, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)
