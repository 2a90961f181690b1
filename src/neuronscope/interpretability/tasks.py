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

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskOutcome:
    """A unit's answers: ``score`` the mean of sigmoid(sharpness * delta) over tasks (the MIS form,
    uncalibrated; 0.5 is chance), ``right`` the fraction of tasks answered right (a tie counts
    half), ``margin`` the mean delta, ``deltas`` every task's delta."""

    score: float
    right: float
    margin: float
    deltas: np.ndarray


def two_choice(strong: np.ndarray, weak: np.ndarray, tasks: int, references: int, query_from: int,
               rng: np.random.Generator, sharpness: float, strong_references: np.ndarray | None = None) -> TaskOutcome:
    """Answer ``tasks`` tasks drawn from a unit's pools of embeddings, (n+, D) ``strong`` and
    (n-, D) ``weak`` (unit length rows, strongest and weakest first). Each task draws
    ``references`` references from the first ``query_from`` rows of a pool and its query from the
    rows after them. With ``strong_references`` (R, D), e.g. the unit's feature visualizations,
    those are every task's strong references."""
    deltas = np.empty(tasks)
    for t in range(tasks):
        positive = strong[rng.integers(query_from, len(strong))]
        negative = weak[rng.integers(query_from, len(weak))]
        e_plus = strong[rng.permutation(query_from)[:references]] if strong_references is None else strong_references
        e_minus = weak[rng.permutation(query_from)[:references]]
        deltas[t] = ((_mean_similarity(positive, e_plus) - _mean_similarity(positive, e_minus))
                     - (_mean_similarity(negative, e_plus) - _mean_similarity(negative, e_minus)))
    right = (deltas > 0).mean() + 0.5 * (deltas == 0).mean()
    soft = 1.0 / (1.0 + np.exp(-sharpness * deltas))
    return TaskOutcome(float(soft.mean()), float(right), float(deltas.mean()), deltas)


def task_rng(seed: int, unit: str) -> np.random.Generator:
    """The draws of one unit: they depend on the seed and the unit's address only."""
    return np.random.default_rng([seed, *unit.encode()])


def _mean_similarity(query: np.ndarray, references: np.ndarray) -> float:
    return float((references @ query).mean())
