"""``python -m neuronscope``: the same command line as ``neuronscope``."""
import sys

from .cli import main

sys.exit(main())
