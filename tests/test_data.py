"""Photos and image files: everything loads to RGB float in [0, 1], or fails clearly."""
import numpy as np
import pytest
from PIL import Image

import neuronscope as ns
from neuronscope.data.photos import load_image, photo, photo_names


def test_every_bundled_photo_loads_as_rgb():
    names = photo_names()
    assert {"chelsea", "coffee", "astronaut", "rocket", "motorcycle", "camera", "china", "flower"} <= set(names)
    for name in names:
        image = photo(name)
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3, name
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05, name
    assert ns.data.photos(["chelsea", "coffee"]).keys() == {"chelsea", "coffee"}


def test_unknown_photo_suggests_names():
    with pytest.raises(ns.NeuronscopeError, match="did you mean 'chelsea'"):
        photo("chelsae")


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return (rng.random((20, 30, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tiff"])
def test_rgb_files_load(tmp_path, rgb, suffix):
    path = tmp_path / f"image{suffix}"
    Image.fromarray(rgb).save(path, quality=100) if suffix in (".jpg", ".webp") else Image.fromarray(rgb).save(path)
    image = load_image(path)
    assert image.shape == (20, 30, 3) and image.dtype == np.float32
    tolerance = 0.2 if suffix in (".jpg", ".webp") else 1e-6
    assert np.abs(image - rgb / 255.0).mean() < tolerance


def test_greyscale_palette_rgba_and_16bit_files_load(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    rgba = np.dstack([rgb, np.zeros_like(grey)])  # fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "grey16.png")

    assert np.allclose(load_image(tmp_path / "grey.png"), (grey / 255.0)[..., None].repeat(3, 2))
    assert load_image(tmp_path / "palette.png").shape == (20, 30, 3)
    assert np.allclose(load_image(tmp_path / "rgba.png"), 1.0)  # transparent over white
    sixteen = load_image(tmp_path / "grey16.png")
    assert sixteen.shape == (20, 30, 3) and np.allclose(sixteen[..., 0], grey / 255.0, atol=1e-4)


def test_unreadable_inputs_give_clear_errors(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    truncated = tmp_path / "cut.png"
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ns.NeuronscopeError, match="cannot read .*notes.jpg.* as an image"):
        load_image(text)
    with pytest.raises(ns.NeuronscopeError, match="cannot read .*cut.png.* as an image"):
        load_image(truncated)
    with pytest.raises(ns.NeuronscopeError, match="image file not found"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ns.NeuronscopeError, match="is a directory"):
        load_image(tmp_path)


def test_photo_crops_are_the_crops_of_the_bundled_source():
    from neuronscope.data.sources import bundled_source

    source = bundled_source()
    crops = list(ns.data.photo_crops())
    assert len(crops) == len(source) == 30 * len(photo_names()) == 330
    assert [key for key, _ in crops] == list(source.keys())
    for key, crop in crops[::17]:
        np.testing.assert_array_equal(crop, source.load(key))
    # an explicit lattice: one centred crop at scale 1, grid x grid below (the same key scheme)
    chosen = list(ns.data.photo_crops(["coffee"], scales=(1.0, 0.5), grid=2))
    assert [key for key, _ in chosen] == ["coffee@1,0", "coffee@0.5,0", "coffee@0.5,1", "coffee@0.5,2", "coffee@0.5,3"]
    np.testing.assert_array_equal(chosen[0][1], bundled_source(["coffee"], [(1.0, 1)]).load("coffee@1,0"))
    height, width = photo("coffee").shape[:2]
    assert chosen[4][1].shape[:2] == (round(min(height, width) * 0.5),) * 2
    np.testing.assert_array_equal(chosen[4][1], photo("coffee")[-chosen[4][1].shape[0]:, -chosen[4][1].shape[1]:])
