"""Every metric on hand-computed cases."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys import metrics as M

RECS = np.array([[3, 1, 7, -1],    # user 0: targets {1, 7}: hits at ranks 2 and 3
                 [5, 6, 2, 9],     # user 1: targets {9}: hit at rank 4
                 [4, 4, -1, -1]])  # user 2: targets {8}: no hit
TARGETS = [{1, 7}, {9}, {8}]


def test_hits_marks_targets_and_never_padding():
    h = M.hits(RECS, TARGETS, 4)
    assert h.tolist() == [[False, True, True, False], [False, False, False, True], [False] * 4]
    assert not M.hits(np.array([[-1, -1]]), [{0}], 2).any()


def test_recall_at_k():
    assert M.recall_at_k(RECS, TARGETS, 2).tolist() == [0.5, 0.0, 0.0]
    assert M.recall_at_k(RECS, TARGETS, 4).tolist() == [1.0, 1.0, 0.0]
    assert M.recall_at_k(RECS[:1], [set()], 4).tolist() == [0.0]  # no targets: 0, not a division error


def test_ndcg_at_k():
    got = M.ndcg_at_k(RECS, TARGETS, 3)
    idcg0 = 1 + 1 / math.log2(3)
    assert got[0] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / idcg0)
    assert got[1] == 0.0 and got[2] == 0.0
    assert M.ndcg_at_k(RECS, TARGETS, 4)[1] == pytest.approx(1 / math.log2(5))
    assert M.ndcg_at_k(np.array([[1, 7]]), [{1, 7}], 2)[0] == pytest.approx(1.0)  # ideal list


def test_hit_rate_and_mrr():
    assert M.hit_rate_at_k(RECS, TARGETS, 1).tolist() == [0.0, 0.0, 0.0]
    assert M.hit_rate_at_k(RECS, TARGETS, 4).tolist() == [1.0, 1.0, 0.0]
    assert M.mrr_at_k(RECS, TARGETS, 4).tolist() == [0.5, 0.25, 0.0]
    assert M.mrr_at_k(RECS, TARGETS, 3).tolist() == [0.5, 0.0, 0.0]
    assert M.mrr(RECS, TARGETS).tolist() == [0.5, 0.25, 0.0]


def test_targets_as_sparse_matrix_give_the_same_answers():
    t = M.as_target_matrix(TARGETS, 10)
    assert isinstance(t, sp.csr_matrix) and t.shape == (3, 10)
    for fn in (M.recall_at_k, M.ndcg_at_k, M.hit_rate_at_k, M.mrr_at_k):
        assert np.allclose(fn(RECS, t, 4), fn(RECS, TARGETS, 4))


def test_catalog_coverage():
    assert M.catalog_coverage(RECS, 10, 2) == pytest.approx(5 / 10)   # {3, 1, 5, 6, 4}
    assert M.catalog_coverage(RECS, 10, 4) == pytest.approx(8 / 10)   # + {7, 2, 9}
    value, lo, hi = M.coverage_ci(RECS, 10, 4, n_boot=50, seed=1)
    assert value == pytest.approx(0.8) and 0 < lo <= value <= hi <= 1.0


def test_intra_list_diversity():
    cats = np.array([0, 0, 1, 1, 2, 2, 2, 0, 0, 0])  # item -> category
    got = M.intra_list_diversity(RECS, cats, 4)
    # user 0: items 3, 1, 7 -> categories 1, 0, 0: 2 of 3 pairs differ
    assert got[0] == pytest.approx(2 / 3)
    # user 1: 5, 6, 2, 9 -> 2, 2, 1, 0: pairs 6, same 1
    assert got[1] == pytest.approx(5 / 6)
    # user 2: 4, 4 -> one pair, same category
    assert got[2] == pytest.approx(0.0)
    assert np.isnan(M.intra_list_diversity(np.array([[1, -1]]), cats, 2)[0])


def test_novelty_at_k():
    pop = np.full(10, 0.5)
    pop[3] = 0.25
    got = M.novelty_at_k(RECS, pop, 3)
    assert got[0] == pytest.approx((2 + 1 + 1) / 3)  # -log2(.25) = 2, -log2(.5) = 1
    assert got[2] == pytest.approx(1.0)              # padding ignored
    assert np.isnan(M.novelty_at_k(np.array([[-1]]), pop, 1)[0])


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    v = np.r_[np.zeros(50), np.ones(50)]
    mean, lo, hi = M.bootstrap_ci(v, n_boot=300, seed=3)
    assert mean == 0.5 and lo < 0.5 < hi and hi - lo < 0.3
    assert M.bootstrap_ci(v, n_boot=300, seed=3) == (mean, lo, hi)
    assert M.bootstrap_ci(np.ones(10)) == (1.0, 1.0, 1.0)
    assert all(math.isnan(x) for x in M.bootstrap_ci(np.array([np.nan])))


def test_mismatched_shapes_are_a_clear_error():
    with pytest.raises(ValueError, match="targets has"):
        M.recall_at_k(RECS, TARGETS[:2], 2)
