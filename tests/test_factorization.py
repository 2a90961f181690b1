"""The one NMF module: signed data into k non-negative parts, with the negatives clipped or split."""
import numpy as np
import pytest
import torch

import neuronscope as ns
from neuronscope.factorization import nmf


def test_nmf_recovers_a_signed_rank_two_matrix_and_folds_the_split_parts_back():
    rng = np.random.default_rng(0)
    parts = np.array([[1.0, -2.0, 0.0, 0.0], [0.0, 0.0, 3.0, -1.0]])  # (k, C) signed, on separate channels
    loadings = rng.random((6, 5, 2))
    values = torch.from_numpy(loadings @ parts)  # (6, 5, 4): every row a non-negative mix of the two
    found = nmf(values, 2, negatives="split", seed=1)
    assert found.loadings.shape == (6, 5, 2) and found.components.shape == (2, 8) and found.error < 1e-3
    # each found direction is one of the true parts, up to scale
    cosine = (found.directions / np.linalg.norm(found.directions, axis=1, keepdims=True)) @ \
        (parts / np.linalg.norm(parts, axis=1, keepdims=True)).T
    assert cosine.max(1).min() > 0.99 and sorted(cosine.argmax(1).tolist()) == [0, 1]
    rebuilt = found.loadings @ found.directions
    np.testing.assert_allclose(rebuilt, values.numpy(), atol=5e-3 * np.abs(values.numpy()).max())


def test_clipping_drops_the_negative_part_and_keeps_the_components_as_they_are():
    values = np.array([[1.0, -1.0], [2.0, -3.0], [0.5, 4.0]])
    clipped = nmf(values, 2, negatives="clip")
    np.testing.assert_array_equal(clipped.directions, clipped.components)
    rebuilt = clipped.loadings @ clipped.components
    np.testing.assert_allclose(rebuilt, np.maximum(values, 0), atol=1e-4)  # two parts fit 2 clipped channels
    assert clipped.error == pytest.approx(0, abs=1e-4)
    again = nmf(values, 2, negatives="clip")
    np.testing.assert_array_equal(again.loadings, clipped.loadings)  # deterministic for a seed


def test_bad_requests_are_clear_errors():
    with pytest.raises(ns.NeuronscopeError, match="unknown negatives 'drop'"):
        nmf(np.ones((3, 2)), 1, negatives="drop")
    with pytest.raises(ns.NeuronscopeError, match="3 components asked of only 2 channels"):
        nmf(np.ones((3, 2)), 3)
