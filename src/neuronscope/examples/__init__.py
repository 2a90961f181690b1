"""Dataset examples: one streaming pass keeps each unit's top (and bottom) activations with
their positions; receptive fields say how much of the image to crop around them."""
from .receptive import crop_extent, effective_extent, receptive_field
from .running import TopExamples
from .topk import (
           Example,
           ExamplesConfig,
           ExamplesPass,
           LayerExamples,
           crop_box,
           dataset_examples,
           example_crop,
           example_image,
)

__all__ = ["Example", "ExamplesConfig", "ExamplesPass", "LayerExamples", "TopExamples", "crop_box", "crop_extent", "dataset_examples", "effective_extent",
           "example_crop", "example_image", "receptive_field"]
