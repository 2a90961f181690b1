"""The one error type the library raises for bad input, and the "did you mean" helper."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class NeuronscopeError(ValueError):
    """Bad input: an unknown model, layer or class, a channel out of range, an unreadable image.

    The message names the problem and the valid choices; the CLI prints it as one line.
    """


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` choices most similar to ``name`` (case-insensitive), best first."""
    choices = list(choices)
    lowered = name.lower()
    scored = sorted(
        choices,
        key=lambda c: (-difflib.SequenceMatcher(None, lowered, c.lower()).ratio(), c),
    )
    return scored[:n]


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A "did you mean 'a', 'b' or 'c'?" phrase for an error message."""
    best = [f"'{c}'" for c in closest(name, choices, n)]
    if not best:
        return ""
    if len(best) == 1:
        return f"did you mean {best[0]}?"
    return f"did you mean {', '.join(best[:-1])} or {best[-1]}?"
