"""Causal tests: ablate or steer units (channels, neurons, regions, neuron groups, dictionary
features) and see what the model does; check attribution against ablation."""
from .check import AblationCheckConfig, AblationRow, ablation_check
from .edits import Ablate, Edit, LayerEdit, ScaleGroup, Steer
from .intervene import edited_forward, edited_logits, intervene
from .means import ActivationMeans, mean_activations
from .result import ClassChange, Intervention, UnitChange

__all__ = ["Ablate", "AblationCheckConfig", "AblationRow", "ActivationMeans", "ClassChange", "Edit", "Intervention",
           "LayerEdit", "ScaleGroup", "Steer", "UnitChange", "ablation_check", "edited_forward", "edited_logits", "intervene",
           "mean_activations"]
