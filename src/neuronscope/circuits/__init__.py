"""Circuits and neuron mechanics: expanded weights between layers, their pictures, the
decomposed feature visualization of a unit (which earlier features build it, and how), and the
cases by which it fires. Results draw with ``.sheet()``; ``explain(model)`` renders what a fuller
sheet shows, and ``.save(path)`` writes a sheet with its manifest."""
from .cases import ExplainedCases, FiringCases, firing_cases
from .checks import spatial_channel
from .decompose import (
                        Contributions,
                        Decomposition,
                        ExplainedContributions,
                        MechanicsConfig,
                        contributions,
                        decompose,
                        decomposition_sheet,
                        previous_layer,
)
from .expanded import ExpandedWeights, ExplainedWeights, WindowTooSmall, expanded_weights
from .factors import ExplainedFactors, WeightFactors, weight_factors
from .optimal import PatternConfig, optimal_input_pattern
from .pictures import render_cells, spatial_position_images, tile_cells, weight_picture
from .views import ObjectiveViews, objective_views

__all__ = ["Contributions", "Decomposition", "ExpandedWeights", "ExplainedCases", "ExplainedContributions",
           "ExplainedFactors", "ExplainedWeights", "FiringCases", "MechanicsConfig", "ObjectiveViews", "PatternConfig",
           "WeightFactors", "WindowTooSmall", "contributions", "decompose", "decomposition_sheet", "expanded_weights",
           "firing_cases", "objective_views", "optimal_input_pattern", "previous_layer", "render_cells",
           "spatial_channel", "spatial_position_images", "tile_cells", "weight_factors", "weight_picture"]
