"""The `neuronscope` command, through its entry point."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import neuronscope as ns
from neuronscope.cli.main import main
from neuronscope.featurevis.sizing import DEFAULT_SIZE

CLI = Path(ns.__file__).parent / "cli"
GAP = 6
"""Pixels between the cells of a contact sheet (``images.contact_sheet``)."""


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch, zoo_loaded_once):
    """Relative outputs (``-o x.png``) land in the test's own folder, never in the repository; zoo
    models are loaded once for the module, not once per command (conftest.zoo_loaded_once)."""
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def manifest_of(picture: Path) -> dict:
    return json.loads(picture.with_suffix(".json").read_text())


def assert_sheet(path: Path, columns: int, cell: int, rows: int | None = None) -> np.ndarray:
    """A contact sheet of ``columns`` cells ``cell`` px wide (and ``rows`` rows, if given) that shows something."""
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert picture.shape[1] == columns * (cell + GAP) + GAP, picture.shape
    if rows is not None:
        assert rows * cell < picture.shape[0] < rows * (cell + 60) + 60, picture.shape
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 50 and picture.std() > 10, "a flat picture"
    return picture


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuronscope: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_nothing_written():
    """A refused command leaves no half-written output behind (the working folder is the test's own)."""
    assert not any(Path.cwd().iterdir()), sorted(p.name for p in Path.cwd().iterdir())


def test_models_lists_the_zoo(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                                                             "inceptionv1", "googlenet"]


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


def test_classify_whole_skips_the_centre_crop(capsys):
    code, out, _ = run(capsys, "classify", "chelsea", "--top", "1", "--whole")
    assert code == 0 and out.splitlines()[0] == "chelsea  (efficientnet_lite0, whole image)"
    code, out, _ = run(capsys, "classify", "chelsea", "--top", "1")
    assert out.splitlines()[0] == "chelsea  (efficientnet_lite0, centre crop)"


def test_accentuate_writes_a_sheet_the_image_and_a_manifest(capsys, tmp_path):
    out = tmp_path / "accent.png"
    code, stdout, _ = run(capsys, "accentuate", "chelsea", "blocks.3.0:2", "-o", str(out), "--steps", "4", "--size", "48",
                          "--no-progress")
    assert code == 0 and "on the photo" in stdout
    assert Image.open(tmp_path / "accent_accentuated.png").size == (48, 48)
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["kind"] == "feature accentuation" and manifest["unit"] == "blocks.3.0:2"
    assert manifest["value"] > manifest["photo_value"]


def test_activations_print_what_read_units_reads(capsys, lite0):
    units = ["logits:tabby", "blocks.4.2:17@3,4", "blocks.4.2:17"]
    code, out, _ = run(capsys, "activations", "chelsea", *units)
    assert code == 0 and out.splitlines()[0] == "chelsea  (efficientnet_lite0)"
    rows = [line.split() for line in out.splitlines()[2:]]
    expected = [[str(r.unit), f"{r.mean:.4f}", f"{r.max:.4f}", f"{r.argmax[0]},{r.argmax[1]}" if r.argmax else "-"]
                for r in ns.read_units(lite0, "chelsea", units)]
    assert rows == expected
    assert rows[0][0] == "logits:281" and rows[1][0] == "blocks.4.2:17@3,4" and rows[2][3] != "-"


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


def test_the_installed_console_script_prints_no_traceback(tmp_path):
    script = shutil.which("neuronscope") or str(__import__("pathlib").Path(sys.executable).with_name("neuronscope"))
    result = subprocess.run([script, "activations", "chelsea", "blocks.9:1"], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
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
    assert sorted(p.name for p in out.iterdir()) == ["000_blocks.3.0_2.png", "001_logits_281_tabby.png", "classification.json",
                                                     "manifest.json", "sheet.png"]
    verdict = json.loads((out / "classification.json").read_text())["images"]  # only the class image is classified
    assert [v["image"].rsplit("/", 1)[-1] for v in verdict] == ["001_logits_281_tabby.png"] and verdict[0]["class"] == 281
    assert len(verdict[0]["top"]) == len(verdict[0]["whole"]) == 5 and "classification.json" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["steps"] == 4 and manifest["config"]["size"] == 32
    assert manifest["units"] == ["blocks.3.0:2", "logits:281"]  # units as parsed; the class name is in the labels
    assert manifest["labels"] == ["blocks.3.0:2", "logits:281 tabby"]
    assert Image.open(out / "000_blocks.3.0_2.png").size == (32, 32)
    assert_sheet(out / "sheet.png", columns=2, cell=32, rows=1)
    lines = stdout.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [[str(out / "000_blocks.3.0_2.png"), "blocks.3.0:2"],
                                                         [str(out / "001_logits_281_tabby.png"), "logits:281"]]
    assert lines[2].strip().startswith("001_logits_281_tabby.png  tabby: classified as")  # 4 steps: not yet a tabby
    assert lines[3].startswith(str(out / "classification.json")) and lines[4].startswith(str(out / "sheet.png"))


def test_render_refuses_a_png_name_for_its_output_folder(capsys, tmp_path):
    code, _, err = run(capsys, "render", "efficientnet_lite0", "blocks.3.0:1", "-o", "out.png", "--steps", "2")
    assert_one_line_error(code, err, "give a folder", "'out.png'")
    assert not (tmp_path / "out.png").exists()


def test_render_layer_writes_a_contact_sheet_with_a_manifest(capsys, tmp_path):
    sheet = tmp_path / "sheet.png"
    code, _, _ = run(capsys, "render-layer", "efficientnet_lite0", "blocks.2.1", "--channels", "0:3", "-o", str(sheet),
                     "--steps", "3", "--size", "32", "--no-progress")
    assert code == 0
    assert_sheet(sheet, columns=8, cell=32, rows=1)  # --columns defaults to 8
    manifest = manifest_of(sheet)
    assert manifest["units"] == ["blocks.2.1:0", "blocks.2.1:1", "blocks.2.1:2"]
    assert manifest["config"]["steps"] == 3 and len(manifest["values"]) == 3 and "total_s" in manifest["timing"]


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
    assert_nothing_written()


def test_caricature_writes_a_sheet_and_a_manifest(capsys, tmp_path):
    sheet = tmp_path / "car.png"
    code, out, _ = run(capsys, "caricature", "chelsea", "--layers", "blocks.2.1,blocks.4.2", "--steps", "3",
                       "--size", "48", "-o", str(sheet), "--no-progress")
    assert code == 0 and "blocks.4.2  cos to input" in out
    manifest = manifest_of(sheet)
    assert manifest["layers"] == ["blocks.2.1", "blocks.4.2"] and manifest["image"] == "chelsea"
    assert manifest["kind"] == "caricature" and manifest["size"] == [48, 48] and manifest["config"]["steps"] == 3
    assert_sheet(sheet, columns=3, cell=48, rows=1)
    cosines = [float(line.split()[-1]) for line in out.splitlines()[:2]]
    assert all(-1 <= c <= 1 for c in cosines) and out.splitlines()[2] == str(sheet)
    code, _, _ = run(capsys, "caricature", "chelsea", "--model", "efficientnet_lite0", "--model", "efficientnet_lite1",
                     "--layers", "blocks.3.1", "--steps", "2", "--size", "48", "-o", str(sheet), "--no-progress")
    assert code == 0 and len(manifest_of(sheet)["runs"]) == 2
    assert_sheet(sheet, columns=2, cell=48, rows=2)  # one row per model


def test_attributive_caricatures_share_one_row(capsys, tmp_path):
    sheet = tmp_path / "attributive.png"
    code, out, _ = run(capsys, "caricature", "chelsea", "--layers", "blocks.3.1,blocks.4.2", "--class", "tabby,281",
                       "--steps", "2", "--size", "48", "-o", str(sheet), "--no-progress")
    assert code == 0 and len(out.splitlines()) == 5
    manifest = manifest_of(sheet)
    assert manifest["kind"] == "attributive caricatures" and [r["layers"] for r in manifest["runs"]] == [
        ["blocks.3.1", "blocks.3.1"], ["blocks.4.2", "blocks.4.2"]]
    assert_sheet(sheet, columns=5, cell=48, rows=1)  # input + 2 layers x 2 classes


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
    assert_nothing_written()


@pytest.mark.slow
def test_attribute_and_groups_write_pictures_and_manifests(capsys, tmp_path):
    picture = tmp_path / "attribution.png"
    code, out, err = run(capsys, "attribute", "chelsea", "--top", "2", "-o", str(picture))
    assert code == 0 and err == ""
    manifest = manifest_of(picture)
    assert manifest["layer"] == "act2" and manifest["logit_agreement"] > 0.99 and manifest["image"] == "chelsea"
    assert len(manifest["targets"]) == 2 and manifest["totals"][0] >= manifest["totals"][1]
    printed = [line.rsplit(": attribution ", 1) for line in out.splitlines()[:2]]
    assert [t for t, _ in printed] == manifest["targets"]
    assert [float(rest.split()[0]) for _, rest in printed] == pytest.approx(manifest["totals"], abs=1e-3)
    assert_sheet(picture, columns=3, cell=224, rows=1)
    code, _, err = run(capsys, "attribute", "chelsea", "--layer", "blocks.4.2", "--classes", "tabby", "-o", str(picture))
    assert code == 0 and "agree poorly with the logits" in err and "--method integrated" in err
    code, _, err = run(capsys, "attribute", "chelsea", "--layer", "blocks.4.2", "--classes", "tabby", "--method", "integrated",
                       "--steps", "32", "-o", str(picture))
    manifest = manifest_of(picture)
    assert code == 0 and err == "" and manifest["method"] == "integrated gradients (32 steps)"
    change = manifest["scores"][0] - manifest["baseline_scores"][0]
    assert manifest["totals"][0] == pytest.approx(change, rel=0.05)  # completeness, to the error of 32 steps
    groups = tmp_path / "groups.png"
    code, out, _ = run(capsys, "groups", "chelsea", "--k", "3", "--steps", "2", "-o", str(groups), "--no-progress")
    assert code == 0 and "3 groups at blocks.4.2" in out
    manifest = manifest_of(groups)
    assert len(manifest["attribution_to_top_class"]) == 3 and manifest["k"] == 3 and manifest["layer"] == "blocks.4.2"
    assert manifest["top_class"] in out.splitlines()[0] and 0 <= manifest["reconstruction_error"] < 1
    printed = [float(v) for v in out.splitlines()[0].split(": ")[-1].split(", ")]
    assert printed == pytest.approx(manifest["attribution_to_top_class"], abs=0.006)
    assert manifest["icons"]["config"]["steps"] == 2
    assert_sheet(groups, columns=5, cell=224, rows=2)  # input, overlay, 3 maps; under the maps, 3 directions


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
    assert_nothing_written()


def test_dictionary_and_grid_write_pictures_and_manifests(capsys, tmp_path):
    out = tmp_path / "dictionary.png"
    code, stdout, _ = run(capsys, "dictionary", "chelsea", "--steps", "2", "--cache", str(tmp_path / "cache"), "-o", str(out),
                          "--no-progress")
    assert code == 0
    manifest = manifest_of(out)
    channels = np.array(manifest["channels"])
    assert channels.shape == (7, 7, 4) and manifest["layer"] == "blocks.5.1" and manifest["render"]["steps"] == 2
    assert stdout.startswith(f"{len(np.unique(channels))} channel visualizations; strongest position")
    assert len(list((tmp_path / "cache").rglob("*.png"))) == len(np.unique(channels))
    assert_sheet(out, columns=6, cell=7 * 48)  # input, mosaic, 4 icons at the mosaic's size
    grid = tmp_path / "grid.png"
    code, _, _ = run(capsys, "grid", "chelsea", "--steps", "2", "-o", str(grid), "--no-progress")
    manifest = manifest_of(grid)
    assert code == 0 and manifest["layer"] == "blocks.5.1" and manifest["render"]["steps"] == 2
    assert np.array(manifest["magnitudes"]).shape == (7, 7) and max(map(max, manifest["magnitudes"])) == pytest.approx(1)
    assert_sheet(grid, columns=2, cell=7 * 48, rows=1)


def test_weights_shows_the_top_inputs_of_a_unit(capsys, tmp_path):
    out = tmp_path / "weights.png"
    code, stdout, _ = run(capsys, "weights", "efficientnet_lite0", "blocks.4.2:6", "--from", "blocks.3.2", "--top", "3",
                          "--steps", "2", "-o", str(out), "--no-progress")
    assert code == 0 and len(stdout.strip().splitlines()) == 4
    manifest = manifest_of(out)
    assert manifest["unit"] == "blocks.4.2:6" and manifest["source"] == "blocks.3.2" and manifest["window"] == 13
    printed = [(line.split()[0], float(line.split()[1])) for line in stdout.splitlines()[:3]]
    assert printed == [(f"blocks.3.2:{c}", pytest.approx(v, abs=1e-4)) for c, v in manifest["top_inputs"]]
    assert_sheet(out, columns=4, cell=96, rows=2)  # the unit and 3 inputs; their weights below
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
    assert manifest["image"] == "chelsea" and manifest["neuron"].startswith("blocks.4.0:17@")
    assert_sheet(out, columns=3, cell=5 * 48, rows=2)  # the window's grid is 5 cells of 48 px
    views = tmp_path / "views.png"
    code, _, _ = run(capsys, "views", "efficientnet_lite0", "blocks.4.2:6", "--steps", "2", "-o", str(views), "--no-progress")
    manifest = manifest_of(views)
    assert code == 0 and manifest["unit"] == "blocks.4.2:6" and len(manifest["values"]) == 3
    assert manifest["labels"] == ["blocks.4.2:6 neuron", "blocks.4.2:6 channel", "blocks.4.2:6 direction x cos"]
    assert_sheet(views, columns=3, cell=DEFAULT_SIZE, rows=1)  # a spatial layer: the default side


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
    assert_nothing_written()


def _handlers() -> list[tuple[str, ast.FunctionDef]]:
    """Every function a CLI module hands to ``set_defaults(run=...)``, with its module's name."""
    found = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text())
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "set_defaults":
                found += [(path.name, functions[k.value.id]) for k in node.keywords if k.arg == "run"]
    return found


def test_every_handler_is_short_and_every_command_module_small():
    handlers = _handlers()
    assert len(handlers) == 24  # 16 commands here, compare, atlas, features, score, ablate, microscope and serve, fetch in their modules
    for module, function in handlers:
        body = function.body[1:] if isinstance(function.body[0], ast.Expr) else function.body  # not the docstring
        lines = function.body[-1].end_lineno - body[0].lineno + 1
        assert lines <= 20, f"{module}: {function.name} has {lines} lines; move the work into the library"
    for path in CLI.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name


def test_the_parser_lists_every_command_in_order():
    from neuronscope.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert list(commands) == ["models", "layers", "photos", "classify", "activations", "render", "render-layer", "accentuate",
                              "caricature", "attribute", "groups", "dictionary", "grid", "weights", "mechanics",
                              "views", "compare", "atlas", "features", "score", "ablate", "microscope", "serve", "fetch"]
