"""Dataset examples: one streaming pass keeps each unit's top (and bottom) activations with
their positions; receptive fields say how much of the image to crop around them."""
from .receptive import effective_extent, receptive_field
from .topk import (
           Example,
           ExamplesConfig,
           LayerExamples,
           crop_box,
           dataset_examples,
           example_crop,
           example_image,
)

__all__ = ["Example", "ExamplesConfig", "LayerExamples", "crop_box", "dataset_examples", "effective_extent",
           "example_crop", "example_image", "receptive_field"]
