"""Names every layer of the package shares (a leaf module: it imports nothing of ours)."""

LOGITS = "logits"
"""Pseudo-layer name for the model's output (the class logits of a classifier)."""

INPUT = "input"
"""Pseudo-layer name for the optimized image in [0, 1], before transforms (for penalties)."""
