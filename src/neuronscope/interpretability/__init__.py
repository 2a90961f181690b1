"""A verdict on every unit: a human-free two-choice interpretability score (the recipe of the
Machine Interpretability Score, uncalibrated), random directions as its baseline, and sanity
checks on feature visualizations.

    scores = interpretability(model, bundled_source(), ["blocks.4.2"])
    baseline = interpretability(with_random_directions(model, "blocks.4.2"), source, "blocks.4.2.random")
"""
from .baseline import RandomDirections, with_random_directions
from .checks import PathSimilarity, converged, path_similarity
from .config import ScoreConfig, similarity_model_name
from .result import InterpretabilityScores, UnitScore
from .score import interpretability
from .similarity import Similarity
from .tasks import TaskOutcome, two_choice

__all__ = ["RandomDirections", "with_random_directions", "ScoreConfig", "similarity_model_name",
           "InterpretabilityScores", "UnitScore", "interpretability", "Similarity", "TaskOutcome", "two_choice",
           "PathSimilarity", "converged", "path_similarity"]
