"""Objectives: what an optimized image should maximize, as immutable values.

An `Objective` maps the captured activations (a dict: layer name -> tensor, plus ``"input"``
for the image itself) to one value per batch item, shape (B,). The render loop maximizes the
sum over items. Objectives combine with ``+``, ``-``, ``*``, ``/`` and ``sum()`` into new
objectives; operands are never changed. Each declares the layers it reads, so rendering hooks
only those and stops the forward pass after the deepest.

Every constructor takes ``batch``: ``None`` applies the objective to every item, an int to that
item only (0 elsewhere), so one render can hold many units.

Every objective built from these constructors and the algebra carries a ``spec``: plain JSON
(vectors as lists) from which ``from_spec`` rebuilds the same objective, so a manifest can name
exactly what an image maximizes. An objective made from a custom function has ``spec=None``.

The package, by idea: ``base`` (the type and its algebra), ``specs`` (objectives as data),
``activations`` (channels, neurons, layers, classes), ``directions``, ``items`` (diversity and
interpolation across a batch), ``penalties`` (on the image), ``units`` (the objective of a
unit address).
"""
from .activations import channel, channels, class_logit, class_probability, deepdream, layer, neuron
from .base import Activations, Objective, per_item
from .directions import COSINE_FLOOR, EPS, direction, direction_neuron, dot_cosine
from .items import alignment, channel_interpolate, diversity
from .penalties import blur_penalty, l1, pixel_distance, total_variation
from .specs import from_spec
from .units import unit_objective

__all__ = ["COSINE_FLOOR", "EPS", "Activations", "Objective", "alignment", "blur_penalty", "channel",
           "channel_interpolate", "channels", "class_logit", "class_probability", "deepdream", "direction",
           "direction_neuron", "diversity", "dot_cosine", "from_spec", "l1", "layer", "neuron", "per_item",
           "pixel_distance", "total_variation", "unit_objective"]
