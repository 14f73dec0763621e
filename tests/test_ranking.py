"""The one top-k rule (recsys.ranking): known answers on hand-made scores."""
from __future__ import annotations

import numpy as np
import pytest

from recsys.ranking import top_columns, top_k, top_positions


def test_top_k_is_best_first_with_ties_to_the_lower_column():
    s = np.array([[0.5, 0.9, 0.5, 0.1, 0.9],
                  [3.0, 2.0, 1.0, 0.0, -1.0]], np.float32)
    cols, vals = top_k(s, 3)
    assert cols.tolist() == [[1, 4, 0], [0, 1, 2]]
    np.testing.assert_array_equal(vals, np.array([[0.9, 0.9, 0.5], [3.0, 2.0, 1.0]], np.float32))
    assert vals.dtype == np.float32


def test_top_k_pads_unlistable_columns_and_short_rows():
    s = np.array([[-np.inf, 0.2, np.nan, 0.7]])
    cols, vals = top_k(s, 5)  # k above the number of columns
    assert cols.tolist() == [[3, 1, -1, -1, -1]]
    assert vals[0, :2].tolist() == [0.7, 0.2] and np.isneginf(vals[0, 2:]).all()
    assert top_k(np.full((2, 3), -np.inf), 2)[0].tolist() == [[-1, -1], [-1, -1]]
    assert top_k(np.zeros((0, 4)), 2)[0].shape == (0, 2)
    assert top_k(np.zeros((1, 4)), 0)[0].shape == (1, 0)
    with pytest.raises(ValueError, match="rows, columns"):
        top_k(np.zeros(4), 2)


def test_top_k_agrees_with_a_full_sort_on_many_ties():
    rng = np.random.default_rng(5)
    s = rng.integers(0, 6, size=(40, 700)).astype(np.float64)  # many equal scores
    s[rng.random(s.shape) < 0.3] = -np.inf
    for k in (1, 10, 250, 700):
        cols, _ = top_k(s, k)
        for row, got in zip(s, cols):
            want = [c for c in np.lexsort((np.arange(len(row)), -row)) if row[c] > -np.inf][:k]
            assert got[got >= 0].tolist() == want


def test_top_positions_and_top_columns():
    assert top_positions(np.array([0.1, -np.inf, 0.5, 0.5, np.inf]), 10).tolist() == [2, 3, 0]
    tied = np.array([[1.0, 3.0, 2.0, 2.0, 2.0, 0.0]], np.float32)
    assert sorted(top_columns(tied, 3)[0].tolist()) == [1, 2, 3]
