"""Comparing models: which units and layers of two models correspond (universality).

``match_units`` correlates every unit of some layers of model A with every unit of some layers
of model B over the same images at aligned positions, in one streaming pass, and gives the
linear CKA of every pair of layers; ``UnitMatches`` holds the result (arrays and names; save,
load, a similarity heatmap across depth and a sheet of matched units).
"""
from .match import MatchConfig, match_units
from .result import UnitMatches, best_matches
from .sheets import Pair, SheetConfig, matched_units_sheet, pick_units

__all__ = ["MatchConfig", "Pair", "SheetConfig", "UnitMatches", "best_matches", "match_units", "matched_units_sheet",
           "pick_units"]
