"""Comparing models: which units and layers of two models correspond (universality).

``match_units`` correlates every unit of some layers of model A with every unit of some layers
of model B over the same images at aligned positions, in one streaming pass, and gives the
linear CKA of every pair of layers; ``UnitMatches`` holds the result (arrays and names; save,
load, a similarity heatmap across depth and a sheet of matched units).
"""
from .accumulate import UnitMatching
from .match import MatchConfig, finish_matching, match_units, unit_matching
from .result import UnitMatches, best_matches
from .sheets import MatchedUnits, Pair, SheetConfig, matched_units, pick_units

__all__ = ["MatchConfig", "MatchedUnits", "Pair", "SheetConfig", "UnitMatches", "UnitMatching", "best_matches",
           "finish_matching", "match_units", "matched_units", "pick_units", "unit_matching"]
