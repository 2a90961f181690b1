"""The ``neuronscope`` command line: one module per area, each handler loads, calls, saves, prints."""
from .main import build_parser, main

__all__ = ["build_parser", "main"]
