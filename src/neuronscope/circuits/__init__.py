"""Circuits and neuron mechanics: expanded weights between layers, their pictures, the
decomposed feature visualization of a unit (which earlier features build it, and how), and the
cases by which it fires."""
from .cases import FiringCases, firing_cases
from .checks import spatial_channel
from .decompose import (
                        Contributions,
                        Decomposition,
                        MechanicsConfig,
                        contributions,
                        decompose,
                        decomposition_sheet,
                        previous_layer,
)
from .expanded import ExpandedWeights, WindowTooSmall, expanded_weights
from .factors import WeightFactors, weight_factors
from .optimal import optimal_input_pattern
from .pictures import render_cells, spatial_position_images, tile_cells, weight_picture
from .views import objective_views

__all__ = ["Contributions", "Decomposition", "ExpandedWeights", "FiringCases", "MechanicsConfig", "WeightFactors",
           "WindowTooSmall", "contributions", "decompose", "decomposition_sheet", "expanded_weights", "firing_cases",
           "objective_views", "optimal_input_pattern", "previous_layer", "render_cells", "spatial_channel",
           "spatial_position_images", "tile_cells", "weight_factors", "weight_picture"]
