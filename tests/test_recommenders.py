"""One contract suite, run on every registered recommender over a tiny synthetic store with planted structure.

Two clusters of users and items: cluster A (users 0-23, items 0-5) and cluster B (users 24-39, items 6-11).
Every user touches 3 of their cluster's 6 items (item 0 / item 6 more often than the rest), so a personalised
model must recommend a user's own cluster, most popular must recommend item 0, recency the user's last item.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.ingest.interactions import Interactions
from recsys.recommenders import Recommender
from recsys.recommenders import registry

N_ITEMS, N_USERS, SPLIT_USER = 12, 40, 24
# the torch models need more than the build's bounded epochs to learn 40 users; 32+ factors on a 12-item store
# would just memorise each user's items, so the factor models get a rank that matches the planted structure
FAST = {"mf_mse": dict(epochs=150, batch_size=64, factors=4), "ncf": dict(epochs=60, batch_size=64),
        "als": dict(factors=4), "svd": dict(factors=4)}


def planted() -> Interactions:
    """The two-cluster store described above (deterministic)."""
    rng = np.random.default_rng(0)
    rows = []
    t = 1_700_000_000
    for u in range(N_USERS):
        base = 0 if u < SPLIT_USER else 6
        items = [base] + list(base + 1 + rng.choice(5, 2, replace=False))
        for i in items:
            ev = S.EVENT_TYPES.index(S.PURCHASE if i == base else S.VIEW)
            rows.append((u, i, ev, t, u))
            t += 60
    u, i, e, ts, sess = map(np.array, zip(*rows))
    catalog = pd.DataFrame({"product_id": np.arange(100, 100 + N_ITEMS), "category_id": np.arange(N_ITEMS) // 3,
                            "category_code": [f"dept{c // 2}.cat{c}" for c in np.arange(N_ITEMS) // 3],
                            "brand": "b", "price": 10.0, "views": 1, "carts": 0, "purchases": 0})
    return Interactions(u.astype(np.int32), i.astype(np.int32), e.astype(np.int8), ts.astype(np.int64),
                        sess.astype(np.int64), np.arange(1000, 1000 + N_USERS), np.arange(100, 100 + N_ITEMS),
                        catalog)


@pytest.fixture(scope="module")
def data() -> Interactions:
    return planted()


def kwargs(name: str) -> dict:
    return FAST.get(name, {})


@pytest.fixture(scope="module", params=registry.names())
def fitted(request, data):
    name = request.param
    return name, registry.make(name, **kwargs(name)).fit(data)


def seen_items(data: Interactions, u: int) -> set[int]:
    return set(data.item[data.user == u].tolist())


def test_every_model_implements_the_protocol(fitted):
    name, m = fitted
    assert isinstance(m, Recommender)
    assert m.name == name


def test_shapes_k_and_ordering(fitted):
    _, m = fitted
    reranked = getattr(m, "diversity_weight", 0.0) > 0  # MMR order is not the relevance order, by design
    users = np.array([0, 5, 30])
    rec = m.recommend(users, 4)
    assert rec.items.shape == (3, 4) and rec.scores.shape == (3, 4)
    assert rec.items.dtype == np.int64
    for row, sc in zip(rec.items, rec.scores):
        valid = row >= 0
        assert (row[valid] < N_ITEMS).all()
        assert len(set(row[valid])) == valid.sum()                # no duplicates
        assert not (valid[1:] & ~valid[:-1]).any()                  # -1 only at the tail
        assert reranked or (np.diff(sc[valid]) <= 1e-6).all()     # best first


def test_minus_one_pads_lists_longer_than_the_catalog(fitted):
    _, m = fitted
    rec = m.recommend(np.array([1]), N_ITEMS + 3)
    assert rec.items.shape == (1, N_ITEMS + 3)
    assert (rec.items[0, N_ITEMS:] == -1).all()
    assert m.recommend(np.array([], dtype=np.int64), 3).items.shape == (0, 3)


def test_exclude_seen_is_honoured(fitted, data):
    _, m = fitted
    users = np.arange(N_USERS)
    rec = m.recommend(users, 6, exclude_seen=True)
    for u, row in zip(users, rec.items):
        assert not (set(row[row >= 0].tolist()) & seen_items(data, u))


def test_fitting_twice_gives_the_same_lists(fitted, data):
    name, m = fitted
    again = registry.make(name, **kwargs(name)).fit(data)
    users = np.arange(N_USERS)
    assert np.array_equal(m.recommend(users, 5).items, again.recommend(users, 5).items)


def test_sensible_top_item_on_the_planted_clusters(fitted, data):
    name, m = fitted
    if name == "popular":
        assert (m.recommend(np.arange(N_USERS), 1).items[:, 0] == 0).all()
        return
    if name.startswith("recently"):
        for u in (0, 30):
            own = data.item[(data.user == u) & (data.event == S.EVENT_TYPES.index(S.PURCHASE))] \
                if name == "recently_bought" else data.item[data.user == u]
            assert m.recommend(np.array([u]), 1).items[0, 0] == own[-1]
        return
    users = np.arange(N_USERS)
    top = m.recommend(users, 1, exclude_seen=True).items[:, 0]
    cluster = np.where(users < SPLIT_USER, 0, 1)
    agree = ((top >= 6).astype(int) == cluster).mean()
    assert agree >= 0.8, f"{name}: only {agree:.0%} of users get an item of their own cluster first"


def test_similar_items_or_a_clear_not_implemented(fitted):
    _, m = fitted
    try:
        sim = m.similar_items(1, 3)
    except NotImplementedError:
        return
    assert sim.items.shape == (1, 3)
    assert 1 not in sim.items[0].tolist()


def test_bad_arguments_are_clear_errors(fitted):
    _, m = fitted
    with pytest.raises(ValueError):
        m.recommend(np.array([0]), 0)
    with pytest.raises(ValueError):
        m.recommend(np.array([N_USERS + 5]), 3)


def test_registry_lists_every_baseline_and_rejects_unknown_names():
    for name in ("popular", "recently_viewed", "recently_bought", "item_knn", "ease", "user_knn", "svd", "als",
                 "mf_mse", "ncf"):
        assert name in registry.names()
    with pytest.raises(KeyError, match="known"):
        registry.make("nope")


def test_user_knn_known_scores_and_tie_break():
    """User-user CF on a hand-made store: cosine on item sets, the top neighbours' weighted votes, ties between
    equally similar neighbours to the lower user code."""
    from recsys.recommenders.userknn import UserKNNRecommender
    view, purchase = S.EVENT_TYPES.index(S.VIEW), S.EVENT_TYPES.index(S.PURCHASE)
    events = [(0, 0, view), (0, 1, view),                          # u0 {0, 1}
              (1, 0, view), (1, 1, view), (1, 2, purchase),        # u1 {0, 1, 2}: cos(u0, u1) = 2 / sqrt(6)
              (2, 0, view), (2, 3, view),                          # u2 {0, 3}:    cos(u0, u2) = 1 / 2
              (3, 5, view), (4, 5, view), (4, 6, view), (5, 5, view), (5, 7, view)]  # u4, u5 tie for u3
    u, i, e = map(np.array, zip(*events))
    n_items = 8
    catalog = pd.DataFrame({"product_id": np.arange(n_items), "category_id": 0, "category_code": "a.b",
                            "brand": "b", "price": 1.0, "views": 1, "carts": 0, "purchases": 0})
    train = Interactions(u.astype(np.int32), i.astype(np.int32), e.astype(np.int8),
                         np.arange(len(u), dtype=np.int64), u.astype(np.int64), np.arange(6), np.arange(n_items),
                         catalog)
    one, two = UserKNNRecommender(neighbours=1).fit(train), UserKNNRecommender(neighbours=2).fit(train)
    c1, c2 = 2 / np.sqrt(6), 0.5
    np.testing.assert_allclose(one._scores(np.array([0]))[0, :4], [c1, c1, 5 * c1, -np.inf], rtol=1e-5)
    np.testing.assert_allclose(two._scores(np.array([0]))[0, :4], [c1 + c2, c1, 5 * c1, c2], rtol=1e-5)
    s3 = one._scores(np.array([3]))[0]          # u4 and u5 are equally similar: u4 (lower code) votes
    assert s3[6] > 0 and s3[7] == -np.inf and s3[5] > 0


def test_ease_known_weights():
    """EASE on two items: G = X'X + l2 I = [[a + l2, c], [c, b + l2]] gives B[0, 1] = c / (a + l2) and
    B[1, 0] = c / (b + l2) (Steck 2019, eq. 8 for a 2 x 2 Gram matrix); only the most-used items are kept."""
    from recsys.recommenders.ease import EASERecommender
    view = S.EVENT_TYPES.index(S.VIEW)
    events = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (3, 2)]   # a = 3 users of item 0, b = 2 of item 1, c = 2
    u, i = map(np.array, zip(*events))
    catalog = pd.DataFrame({"product_id": np.arange(3), "category_id": 0, "category_code": "a.b", "brand": "b",
                            "price": 1.0, "views": 1, "carts": 0, "purchases": 0})
    train = Interactions(u.astype(np.int32), i.astype(np.int32), np.full(len(u), view, np.int8),
                         np.arange(len(u), dtype=np.int64), u.astype(np.int64), np.arange(4), np.arange(3), catalog)
    m = EASERecommender(l2=1.0, max_items=2).fit(train)
    assert m.items.tolist() == [0, 1]                      # item 2 (one user) is outside the top 2
    np.testing.assert_allclose(m.B, [[0, 2 / 4], [2 / 3, 0]], rtol=1e-6)
    s = m._scores(np.array([2, 3]))
    np.testing.assert_allclose(s[0, :2], [0.0, 0.5], rtol=1e-6)  # user 2 has item 0: item 1 scores B[0, 1]
    assert s[0, 2] == -np.inf and np.isneginf(s[1]).all()      # outside the kept items / no kept history


def hand_made(events: list[tuple[int, int, int]], n_users: int, n_items: int) -> Interactions:
    """A store of (user, item, event index) triples, one session per user."""
    u, i, e = map(np.array, zip(*events))
    catalog = pd.DataFrame({"product_id": np.arange(n_items), "category_id": 0, "category_code": "a.b",
                            "brand": "b", "price": 1.0, "views": 1, "carts": 0, "purchases": 0})
    return Interactions(u.astype(np.int32), i.astype(np.int32), e.astype(np.int8), np.arange(len(u), dtype=np.int64),
                        u.astype(np.int64), np.arange(n_users), np.arange(n_items), catalog)


def test_item_knn_known_cosines_orientation_and_weights():
    """Item-item CF on a hand-made store: cosine of the items' user sets, no item its own neighbour, row i holds
    item i's top neighbours, and a profile item's similarities count with the user's event weight on it."""
    from recsys.recommenders.itemknn import ItemKNNRecommender
    view, purchase = S.EVENT_TYPES.index(S.VIEW), S.EVENT_TYPES.index(S.PURCHASE)
    train = hand_made([(0, 0, view), (0, 1, view),                       # item 0: users {0, 1, 2}
                       (1, 0, view), (1, 1, view), (1, 2, purchase),     # item 1: {0, 1}; item 2: {1}
                       (2, 0, view), (2, 3, view)], 3, 5)                # item 3: {2}; item 4: nobody
    c01, c02, c03, c12 = 2 / np.sqrt(6), 1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(2)
    full = ItemKNNRecommender(neighbours=4).fit(train)
    np.testing.assert_allclose(full.sim.toarray(), [[0, c01, c02, c03, 0], [c01, 0, c12, 0, 0],
                                                    [c02, c12, 0, 0, 0], [c03, 0, 0, 0, 0], [0] * 5], rtol=1e-5)
    np.testing.assert_allclose(full._scores(np.array([0]))[0], [c01, c01, c02 + c12, c03, -np.inf], rtol=1e-5)
    np.testing.assert_allclose(full._scores(np.array([1]))[0, :4], [c01 + 5 * c02, c01 + 5 * c12, c02 + c12, c03],
                               rtol=1e-5)                                # u1 bought item 2: weight 5
    sim = full.similar_items(0, 4)
    assert sim.items[0].tolist() == [1, 2, 3, -1]                        # co-bought item first; 2, 3 tie: lower
    np.testing.assert_allclose(sim.scores[0, :3], [c01, c02, c03], rtol=1e-5)
    one = ItemKNNRecommender(neighbours=1).fit(train)                    # each item keeps its single best
    np.testing.assert_allclose(one.sim.toarray(), [[0, c01, 0, 0, 0], [c01, 0, 0, 0, 0], [0, c12, 0, 0, 0],
                                                   [c03, 0, 0, 0, 0], [0] * 5], rtol=1e-5)
    np.testing.assert_allclose(one._scores(np.array([2]))[0], [c03, c01, -np.inf, -np.inf, -np.inf], rtol=1e-5)


def test_als_factors_are_seeded_and_solve_the_confidence_weighted_least_squares():
    """Same seed, same factors; after the last half-step every item vector is the exact ridge solution
    (X'C_iX + reg I) y = X'C_i p_i with confidence c = 1 + alpha * log1p(weight) (Hu, Koren, Volinsky 2008, eq. 4)."""
    from recsys.recommenders.mf import ALSRecommender
    train = planted()
    kw = dict(factors=3, cg_steps=3, iterations=4, regularization=0.1, alpha=10.0, seed=7)
    m, again = ALSRecommender(**kw).fit(train), ALSRecommender(**kw).fit(train)
    assert np.array_equal(m.user_factors, again.user_factors) and np.array_equal(m.item_factors, again.item_factors)
    assert m.user_factors.dtype == m.item_factors.dtype == np.float32
    assert not np.array_equal(m.item_factors, ALSRecommender(**(kw | {"seed": 8})).fit(train).item_factors)
    w = np.zeros((train.n_users, train.n_items))
    np.add.at(w, (train.user, train.item), train.weights())
    x = m.user_factors.astype(np.float64)
    for i in range(train.n_items):
        c = np.where(w[:, i] > 0, 1 + 10.0 * np.log1p(w[:, i]), 1.0)
        y = np.linalg.solve(x.T @ (c[:, None] * x) + 0.1 * np.eye(3), x.T @ (c * (w[:, i] > 0)))
        np.testing.assert_allclose(m.item_factors[i], y, rtol=1e-3, atol=1e-4)


def test_implicit_fits_warn_nothing(monkeypatch):
    """implicit warns about a BLAS thread pool (once a process) and about its own COO input (every fit)."""
    import threadpoolctl
    import implicit.utils
    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with threadpoolctl.threadpool_limits(2, "blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.make("als", factors=4).fit(planted())
        registry.make("item_knn").fit(planted())
    assert not caught, [str(w.message) for w in caught]


def test_randomized_svd_finds_the_top_singular_triplets_in_row_blocks(monkeypatch):
    """Against numpy's exact SVD on a matrix of known low rank plus noise, tall and wide, with row blocks smaller
    than the matrix (the long side is walked in blocks at full size)."""
    import scipy.sparse as sp

    from recsys.recommenders import mf
    monkeypatch.setattr(mf, "SVD_BLOCK_ROWS", 37)
    rng = np.random.default_rng(0)
    # four user groups each with its own items (a sparse matrix of rank 4, singular values ~ 8:4:2:1), plus noise
    dense = np.zeros((300, 60))
    for g, w in enumerate([8.0, 4.0, 2.0, 1.0]):
        dense[75 * g:75 * (g + 1), 15 * g:15 * (g + 1)] = w
    dense[dense > 0] *= 1 + 0.05 * rng.random(int((dense > 0).sum()))
    for a in (dense, dense.T):
        r = sp.csr_matrix(a.astype(np.float32))
        u, s, vt = mf.randomized_svd(r, 3, seed=1)
        exact = np.linalg.svd(a, compute_uv=False)[:3]
        np.testing.assert_allclose(s, exact, rtol=1e-4)
        assert u.dtype == np.float32 and u.shape == (a.shape[0], 3) and vt.shape == (3, a.shape[1])
        np.testing.assert_allclose(vt @ vt.T, np.eye(3), atol=1e-6)   # orthonormal right vectors
        np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-4)     # and left ones
        approx = (u * s) @ vt
        best = np.linalg.norm(a - (np.linalg.svd(a)[0][:, :3] * exact) @ np.linalg.svd(a)[2][:3])
        assert np.linalg.norm(a - approx) <= best * 1.001  # as good as the exact rank-3 approximation
