"""EfficientNet-Lite0 brought as a user's own model: a factory that builds the bare network
(random weights; the real ones come from ``--weights``) and says what it expects in attributes."""
from neuronscope.models import efficientnet_lite


def lite0():
    network = efficientnet_lite.EfficientNetLite(efficientnet_lite.VARIANTS["efficientnet_lite0"])
    network.name = "efficientnet_lite0"
    network.input_size = 224
    network.normalize = "tf"
    network.labels = "imagenet"
    network.crop_fraction = 224 / 256
    network.layers = efficientnet_lite.curated_layers(network)
    return network


def broken():
    raise ValueError("this factory cannot build its model")


def not_a_module():
    return 42


LITTLE = 3
