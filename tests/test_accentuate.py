"""Feature accentuation on the real Lite0: the unit rises and the image stays near the photo."""
import pytest
import torch

from neuronscope.errors import NeuronscopeError
from neuronscope.featurevis.accentuate import accentuate
from neuronscope.featurevis.render import RenderConfig, render_units

UNIT = "blocks.4.2:7"


def test_accentuation_raises_the_unit_and_stays_closer_to_the_photo_than_a_free_render(lite0):
    config = RenderConfig(steps=64, size=128, progress=False)
    accent = accentuate(lite0, "chelsea", UNIT, config)
    free = render_units(lite0, [UNIT], config)
    photo = accent.photo
    free_distance = float((free.images[0] - photo).pow(2).mean().sqrt())
    assert accent.value > 2 * accent.photo_value > 0, (accent.photo_value, accent.value)
    assert accent.distance < 0.5 * free_distance, (accent.distance, free_distance)
    assert accent.image.shape == photo.shape == (3, 128, 128)
    assert accent.manifest["unit"] == UNIT and accent.manifest["closeness"] == 10.0


def test_closeness_trades_the_unit_against_the_photo(lite0):
    config = RenderConfig(steps=32, size=96, progress=False)
    loose, tight = (accentuate(lite0, "coffee", UNIT, config, closeness=c) for c in (1.0, 100.0))
    assert tight.distance < loose.distance and tight.value < loose.value
    with pytest.raises(NeuronscopeError, match="closeness must be zero or positive"):
        accentuate(lite0, "coffee", UNIT, config, closeness=-1)
    assert torch.equal(loose.photo, tight.photo)
