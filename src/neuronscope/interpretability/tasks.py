"""The two-choice task of the interpretability score, on embeddings.

A task shows K strongly and K weakly activating reference images and two queries, one strongly
and one weakly activating; the machine answers right when the strong query is nearer the strong
references, relative to the weak ones, than the weak query is:

    delta = [s(q+, E+) - s(q+, E-)] - [s(q-, E+) - s(q-, E-)] > 0

with s(q, E) the mean similarity of q to the images of E (Zimmermann, Klindt & Brendel 2024).
The score is the mean of sigmoid(sharpness * delta), the paper's form, with a sharpness that is
not fitted to human answers (none are at hand offline); the plain fraction of right answers is
kept beside it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import ScoreConfig


@dataclass(frozen=True)
class TaskOutcome:
    """A unit's answers: ``score`` the mean of sigmoid(sharpness * delta) over tasks (the MIS form,
    uncalibrated; 0.5 is chance), ``right`` the fraction of tasks answered right (a tie counts
    half), ``margin`` the mean delta, ``deltas`` every task's delta."""

    score: float
    right: float
    margin: float
    deltas: np.ndarray


def two_choice(strong: np.ndarray, weak: np.ndarray, config: ScoreConfig, rng: np.random.Generator,
               strong_references: np.ndarray | None = None,
               groups: tuple[Sequence[str], Sequence[str]] | None = None) -> TaskOutcome | None:
    """Answer ``config.tasks`` tasks drawn from a unit's pools of embeddings, (n+, D) ``strong``
    and (n-, D) ``weak`` (unit length rows, strongest and weakest first). Each task draws its query
    from the rows from ``config.query_from`` on and ``config.references`` references from the first
    ``query_from`` rows of the pool that are not the query. With ``groups`` (the source group,
    e.g. the photo, of each row of both pools), a query's references come from other groups
    only: the ``query_from`` strongest (weakest) rows of other groups. With ``strong_references``
    (R, D), e.g. the unit's feature visualizations, those are every task's strong references.
    None when no task can be posed (every row of a pool in one group)."""
    references, query_from = config.references, config.query_from
    deltas = []
    for _ in range(config.tasks):
        q_plus, q_minus = rng.integers(query_from, len(strong)), rng.integers(query_from, len(weak))
        plus_rows = _reference_rows(len(strong), q_plus, query_from, groups and groups[0])
        minus_rows = _reference_rows(len(weak), q_minus, query_from, groups and groups[1])
        if not len(plus_rows) or not len(minus_rows):
            continue
        e_plus = strong[rng.permutation(plus_rows)[:references]] if strong_references is None else strong_references
        e_minus = weak[rng.permutation(minus_rows)[:references]]
        positive, negative = strong[q_plus], weak[q_minus]
        deltas.append((_mean_similarity(positive, e_plus) - _mean_similarity(positive, e_minus))
                      - (_mean_similarity(negative, e_plus) - _mean_similarity(negative, e_minus)))
    if not deltas:
        return None
    deltas = np.asarray(deltas)
    right = (deltas > 0).mean() + 0.5 * (deltas == 0).mean()
    soft = 1.0 / (1.0 + np.exp(-config.sharpness * deltas))
    return TaskOutcome(float(soft.mean()), float(right), float(deltas.mean()), deltas)


def _reference_rows(rows: int, query: int, query_from: int, groups: Sequence[str] | None) -> np.ndarray:
    """The rows a query's references are drawn from: the first ``query_from``, or with ``groups``
    the first ``query_from`` of the groups other than the query's."""
    if groups is None:
        return np.arange(query_from)
    return np.array([i for i in range(rows) if groups[i] != groups[query]][:query_from], dtype=int)


def task_rng(seed: int, unit: str) -> np.random.Generator:
    """The draws of one unit: they depend on the seed and the unit's address only."""
    return np.random.default_rng([seed, *unit.encode()])


def _mean_similarity(query: np.ndarray, references: np.ndarray) -> float:
    return float((references @ query).mean())
