"""The MaCo parameterization: fixed natural magnitude spectrum, learnable phase, per-item seeds."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neuronscope as ns
from neuronscope.featurevis.param.base import ImageParam
from neuronscope.featurevis.param.maco import (
    MacoImage,
    load_spectrum,
    maco_magnitude,
    resample_magnitude,
)

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "src" / "neuronscope" / "assets" / "maco_spectrum.npz"


def _script():
    spec = importlib.util.spec_from_file_location("make_maco_spectrum", ROOT / "scripts" / "make_maco_spectrum.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _log_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.log().flatten().numpy(), b.log().flatten().numpy())[0, 1])


@pytest.mark.parametrize("size", [(64, 64), (33, 47), (40, 31), (17, 16)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_shape_and_range(size, channels):
    param = MacoImage(size, [0, 1], channels=channels)
    images = param()
    assert isinstance(param, ImageParam)
    assert (param.batch, param.channels, param.size) == (2, channels, size)
    assert images.shape == (2, channels, *size)
    assert images.dtype == torch.float32 and not images.is_complex()
    assert torch.isfinite(images).all()
    assert images.min() >= 0 and images.max() <= 1
    assert images.std() > 0.02  # not flat grey


@pytest.mark.parametrize("size", [(64, 64), (45, 38)])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_spectrum_follows_the_fixed_magnitude(size, channels):
    param = MacoImage(size, [5], channels=channels)
    with torch.no_grad():
        produced = torch.fft.rfft2(param.spatial()[0], norm="ortho").abs()
    not_dc = torch.ones_like(produced, dtype=torch.bool)
    not_dc[:, 0, 0] = False  # standardising removes the mean (for one channel, all of the DC)
    assert _log_correlation(produced[not_dc], param.magnitude[not_dc]) > 0.9
    # irfft2 makes the fx = 0 and Nyquist columns Hermitian; every other bin keeps its magnitude,
    # up to one constant (the standardisation's scale)
    ratio = (produced / param.magnitude)[:, :, 1:(size[1] + 1) // 2]
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.mean().item()), rtol=1e-3, atol=0)


def test_magnitude_is_natural_not_white():
    magnitude = maco_magnitude((64, 64), 3)
    low, high = magnitude[:, 1:4, 1:4].mean(), magnitude[:, 28:33, 28:33].mean()
    assert low > 20 * high  # falls steeply with frequency, like photos


def test_only_the_phase_is_learned():
    param = MacoImage((32, 30), [0, 1, 2], channels=3)
    assert [name for name, _ in param.named_parameters()] == ["phase"]
    assert param.phase.shape == (3, 3, 32, 16)
    assert not param.magnitude.requires_grad and param.magnitude.shape == (3, 32, 16)
    assert list(param.state_dict()) == ["phase"]
    param().mean().backward()
    assert param.phase.grad is not None and param.phase.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(48, 48), (37, 50)])
def test_batch_items_equal_single_renders(size):
    batched = MacoImage(size, [3, 7])
    single = MacoImage(size, [7])
    assert torch.equal(batched.phase[1], single.phase[0])
    torch.testing.assert_close(batched()[1], single()[0], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(batched()[0], batched()[1])


def test_default_contrast_is_that_of_photos_not_a_haze():
    """The default starts at the pixel contrast of the bundled photos; contrast 1 (the reference
    code's) is the low-contrast haze the default replaced."""
    photos = [ns.data.photo(name) for name in ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")]
    median = float(np.median([p.std() for p in photos]))
    default = float(MacoImage((224, 224), range(4))().std())
    plain = float(MacoImage((224, 224), range(4), contrast=1.0)().std())
    assert abs(default - median) < 0.25 * median
    assert plain < 0.6 * median


def test_init_std_changes_steps_not_the_image():
    torch.testing.assert_close(MacoImage((32, 32), [4], std=1.0)(), MacoImage((32, 32), [4], std=0.1)(),
                               atol=1e-4, rtol=1e-4)


def test_can_be_optimised_toward_a_photo():
    photo = torch.from_numpy(ns.data.photo("chelsea")).permute(2, 0, 1)[None]
    target = F.interpolate(photo, size=(64, 64), mode="bilinear", antialias=True)
    param = MacoImage((64, 64), [0])
    optimizer = torch.optim.Adam(param.parameters(), lr=0.1)
    start = F.mse_loss(param(), target).item()
    for _ in range(40):
        loss = F.mse_loss(param(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert F.mse_loss(param(), target).item() < 0.5 * start


def test_resample_keeps_the_reference_grid():
    magnitude = torch.from_numpy(load_spectrum()["decorrelated"].copy())
    torch.testing.assert_close(resample_magnitude(magnitude, (224, 224)), magnitude, rtol=1e-4, atol=1e-4)
    larger = resample_magnitude(magnitude, (448, 448))
    assert torch.isfinite(larger).all() and (larger > 0).all()
    torch.testing.assert_close(larger[:, 0, 0], 2 * magnitude[:, 0, 0])  # DC scales with sqrt(pixels)
    torch.testing.assert_close(larger[:, 2, 0], magnitude[:, 1, 0], rtol=1e-4, atol=1e-4)  # same cycles per pixel


@pytest.mark.parametrize("kwargs", [
    dict(size=(0, 8), seeds=[0]), dict(size=(8,), seeds=[0]), dict(size=(8.5, 8), seeds=[0]),
    dict(size=(8, 8), seeds=[]), dict(size=(8, 8), seeds=[0], channels=0), dict(size=(8, 8), seeds=[0], std=0.0),
])
def test_bad_input(kwargs):
    with pytest.raises(ns.NeuronscopeError, match="MacoImage"):
        MacoImage(**kwargs)


def test_shipped_spectrum_is_what_the_script_makes(tmp_path):
    written = _script().write_spectrum(tmp_path / "maco_spectrum.npz")
    assert ASSET.stat().st_size < 300_000
    with np.load(ASSET) as shipped, np.load(written) as fresh:
        assert sorted(shipped.files) == sorted(fresh.files)
        for key in ("decorrelated", "rgb"):
            assert shipped[key].dtype == np.float16 and shipped[key].shape == (3, 224, 113)
            np.testing.assert_allclose(shipped[key].astype(np.float32), fresh[key].astype(np.float32), rtol=2e-3)
        for key in set(shipped.files) - {"decorrelated", "rgb"}:
            np.testing.assert_array_equal(shipped[key], fresh[key])
