"""The ranker's candidate pool and feature rows: what LightGBM sees for each (user, candidate item).

``features`` gathers each user's candidates from every source (``candidates``: the two-tower's top items, the
user's own items, the co-occurrence neighbours of the recent items, the trending items and EASE's top items, each
row tagged with its sources) and computes the ``FEATURES`` columns from a ``RankerState``
(``recsys.model.ranker_state``). ``recsys.model.ranker_training`` learns on these rows, ``recsys.model.ranker``
scores them when serving, and ``recsys.model.reasons`` reads the same columns to say why an item is listed. The
``ranker`` argument is the ``RankerRecommender`` whose vectors and catalog keys the rows use.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys import schema as S
from recsys.model.ranker_state import DAY, RankerState, ease_columns, pair_keys, top_popular
from recsys.model.retrieval import retrieval_index, retrieve
from recsys.ranking import top_columns


SOURCES = ("two_tower", "own", "co_occurrence", "trending", "ease")
FEATURES = (
    "tt_score", "tt_rank", "tt_gap",
    "ui_views", "ui_carts", "ui_purchases", "ui_days_since",
    "uc_views", "uc_carts", "uc_purchases", "uc_days_since",
    "ub_views", "ub_carts", "ub_purchases",
    "pop_1d", "pop_7d", "pop_all", "buy_7d", "buy_all", "trend_7d",
    "co_score", "ease_score", "price_ratio", "hist_events", "hist_items", "user_days_since",
    *(f"src_{s}" for s in SOURCES),
)


def features(ranker, st: RankerState, users: np.ndarray, exclude_seen: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of ``users`` (sorted) and their (rows, len(FEATURES)) float32 feature matrix; with
    ``exclude_seen``, the pool of unseen items (see ``candidates``)."""
    users = np.asarray(users, np.int64)
    co = _co_scores(csr_rows(st.recent, users), st.co)  # (B, I) co-occurrence with each user's recent items
    own = csr_rows(st.own, users)
    ease = _ease_scores(st, own)
    u, i, bits = candidates(ranker, st, users, co, ease, exclude_seen, own)
    f = np.zeros((len(u), len(FEATURES)), np.float32)
    col = {n: j for j, n in enumerate(FEATURES)}
    tt = np.einsum("nd,nd->n", st.user_vecs[u], ranker.item_vecs[i])
    f[:, col["tt_score"]] = tt
    # rank of the item's score within the user's candidates (1 = best)
    order = np.lexsort((-tt, u))
    start = np.searchsorted(u[order], u[order], "left")
    rank = np.empty(len(u), np.float32)
    rank[order] = np.arange(len(u)) - start + 1
    f[:, col["tt_rank"]] = rank
    # the score against the user's best candidate: the inner-window two-tower that the ranker learns from and
    # the refitted one it serves with need not score on the same scale, their gaps are closer
    best = np.full(len(users), -np.inf, np.float32)
    np.maximum.at(best, np.searchsorted(users, u), tt)
    f[:, col["tt_gap"]] = tt - best[np.searchsorted(users, u)]
    days = lambda last, found: np.where(found, (st.now - last) / DAY, 365.0)
    c, last, found = st.ui.lookup(pair_keys(u, i, ranker.n_items))
    f[:, col["ui_views"]:col["ui_purchases"] + 1] = c
    f[:, col["ui_days_since"]] = days(last, found)
    n_cat, n_brand = _key_counts(ranker)
    c, last, found = st.uc.lookup(pair_keys(u, ranker.cat[i], n_cat))
    f[:, col["uc_views"]:col["uc_purchases"] + 1] = c
    f[:, col["uc_days_since"]] = days(last, found)
    c, _, _ = st.ub.lookup(pair_keys(u, ranker.brand[i], n_brand))
    f[:, col["ub_views"]:col["ub_purchases"] + 1] = c
    f[:, col["pop_1d"]:col["buy_all"] + 1] = np.log1p(st.pop[i])
    f[:, col["trend_7d"]] = st.trend[i]
    f[:, col["co_score"]] = _csr_lookup(co, np.searchsorted(users, u), i)
    ease_col = ease_columns(st, ranker.n_items)[i]
    f[:, col["ease_score"]] = np.where(ease_col >= 0, ease[np.searchsorted(users, u), np.maximum(ease_col, 0)]
                                       if ease.shape[1] else 0.0, 0.0)
    with np.errstate(invalid="ignore"):
        ratio = ranker.log_price[i] - st.user_logprice[u]
    f[:, col["price_ratio"]] = np.where(np.isfinite(ratio), ratio, 0.0)
    f[:, col["hist_events"]] = np.log1p(st.user_events[u])
    f[:, col["hist_items"]] = np.log1p(st.user_items[u])
    f[:, col["user_days_since"]] = (st.now - st.user_last[u]) / DAY
    for b, s in enumerate(SOURCES):
        f[:, col[f"src_{s}"]] = (bits >> b) & 1
    return u, i, f


def candidates(ranker, st: RankerState, users: np.ndarray, co: sp.csr_matrix, ease: np.ndarray,
               exclude_seen: bool = False, own: sp.csr_matrix | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, source bits) rows, sorted by user then item; tt scores come along in the features.

    With ``exclude_seen`` each source proposes its best items among those the user has not touched (the
    two-tower's top ``n_two_tower`` unseen items, not its top items less the seen ones), and no own items: the
    pool then holds every item the two-tower alone would list, whatever the history's length. ``own``: the users'
    rows of ``st.own`` when the caller has them."""
    cfg = ranker.config
    rows_u, rows_i, rows_s = [], [], []

    def add(u, i, bit):
        rows_u.append(np.asarray(u, np.int64)), rows_i.append(np.asarray(i, np.int64))
        rows_s.append(np.full(len(u), 1 << bit, np.int64))

    own = csr_rows(st.own, users) if own is None else own
    own_row = np.repeat(np.arange(len(users)), np.diff(own.indptr))  # (row, own.indices): the touched items
    if exclude_seen:
        co = (co - co.multiply(own.astype(bool))).tocsr()
        co.eliminate_zeros()
    r, top = retrieve(_retrieval_index(ranker, st), ranker.item_vecs, st.user_vecs[users], cfg.n_two_tower,
                      own if exclude_seen else None)
    add(users[r], top, 0)
    if not exclude_seen:
        add(*_top_per_row(own, users, cfg.n_own), 1)
    add(*_top_per_row(co, users, cfg.n_co), 2)
    if exclude_seen:  # each user's most trending and most popular unseen items
        lists = st.cache.get(("unseen_trending", cfg.n_trending))
        if lists is None:
            lists = st.cache[("unseen_trending", cfg.n_trending)] = top_popular(st.pop, 4 * cfg.n_trending)
        for lst in lists:
            tu, ti = np.repeat(users, len(lst)), np.tile(lst, len(users))
            unseen = _csr_lookup(own, np.repeat(np.arange(len(users)), len(lst)), ti) == 0
            tu, ti = tu[unseen], ti[unseen]
            first = (np.arange(len(tu)) - np.searchsorted(tu, tu, "left")) < cfg.n_trending
            add(tu[first], ti[first], 3)
    else:
        add(np.repeat(users, len(st.trending)), np.tile(st.trending, len(users)), 3)
    if ease.shape[1] and cfg.n_ease > 0:
        e = np.where(ease > 0, ease, -np.inf)  # EASE's negative weights say "not this": no candidate from them
        if exclude_seen:
            c = ease_columns(st, ranker.n_items)[own.indices]
            e[own_row[c >= 0], c[c >= 0]] = -np.inf
        k = min(cfg.n_ease, e.shape[1])
        top = top_columns(e, k)
        ok = np.isfinite(np.take_along_axis(e, top, 1)).ravel()
        add(np.repeat(users, k)[ok], st.ease_items[top.ravel()[ok]], 4)
    u, i, s = np.concatenate(rows_u), np.concatenate(rows_i), np.concatenate(rows_s)
    key = pair_keys(u, i, ranker.n_items)
    uniq, inv = np.unique(key, return_inverse=True)
    bits = np.zeros(len(uniq), np.int64)
    np.bitwise_or.at(bits, inv, s)
    return uniq // ranker.n_items, uniq % ranker.n_items, bits


def touched(x: np.ndarray) -> np.ndarray:
    """Rows whose user viewed, carted or bought the item in the window (what exclude_seen leaves out)."""
    return x[:, [FEATURES.index(f) for f in ("ui_views", "ui_carts", "ui_purchases")]].sum(1) > 0


def _retrieval_index(ranker, st: RankerState):
    """The two-tower's retrieval index for a state's candidates: the index stage's when serving (set on load),
    else built once over the current item vectors with the same parameters (``recsys.model.retrieval``)."""
    if st.index is None:
        st.index = retrieval_index(ranker.item_vecs)
    return st.index


def _key_counts(ranker) -> tuple[int, int]:
    """Category and brand key counts (max + 1) of the catalog, once per catalog: a max over the 170k items'
    keys on every call cost ~0.1 ms."""
    got = getattr(ranker, "_keys_of", None)
    if got is None or got[0] is not ranker.cat or got[1] is not ranker.brand:
        got = ranker._keys_of = (ranker.cat, ranker.brand, int(ranker.cat.max(initial=0)) + 1,
                                 int(ranker.brand.max(initial=0)) + 1)
    return got[2], got[3]


def _ease_scores(st: RankerState, own: sp.csr_matrix) -> np.ndarray:
    """(B, n) EASE scores, over EASE's n items, of the users whose touched items are ``own``'s rows: per user, the
    sum of the rows of B of its items EASE scores (in row order, float32, as SciPy's product summed them; a sparse
    product's checks cost ~0.2 ms of a served call)."""
    n_b, n_i = own.shape
    col = ease_columns(st, n_i)
    if st.ease_items is None or len(st.ease_items) == 0:
        return np.zeros((n_b, 0), np.float32)
    rows = np.repeat(np.arange(n_b), np.diff(own.indptr))
    c = col[own.indices]
    scored = c >= 0
    rows, c = rows[scored], c[scored]
    out = np.zeros((n_b, len(st.ease_items)), np.float32)
    if len(c):
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] = np.add.reduceat(st.ease_B[c].astype(np.float32, copy=False), starts, axis=0)
    return out


def csr_rows(m: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``m[rows]`` for a CSR matrix, by gathering the rows' slices (SciPy's fancy row indexing spends ~0.1 ms a call
    in checks, on a served call's one row); the values are copies, the indices keep ``m``'s order."""
    rows = np.asarray(rows, np.int64)
    lo, lens, pos = _row_slices(m.indptr, rows)
    if len(rows) == 1:
        data, indices = m.data[lo[0]:lo[0] + lens[0]].copy(), m.indices[lo[0]:lo[0] + lens[0]].copy()
    else:
        data, indices = m.data[pos], m.indices[pos]
    indptr = np.zeros(len(rows) + 1, indices.dtype)
    np.cumsum(lens, out=indptr[1:])
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), m.shape[1]))


def _row_slices(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, length) of each of ``rows`` in a CSR matrix with ``indptr``, and the positions of all their entries,
    row after row (not ``np.diff(indptr)[rows]``: 0.3 ms at 294k items)."""
    lo = indptr[rows].astype(np.int64)
    lens = indptr[rows + 1].astype(np.int64) - lo
    return lo, lens, np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()), dtype=np.int64)


def _top_per_row(m: sp.csr_matrix, users: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of each row's ``n`` largest entries (ties to the lower item code)."""
    m = m.tocsr()
    r = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, r))
    r, c = r[order], m.indices[order]
    start = np.searchsorted(r, r, "left")
    keep = (np.arange(len(r)) - start) < n
    return users[r[keep]], c[keep]


def _co_scores(recent: sp.csr_matrix, co: sp.csr_matrix) -> sp.csr_matrix:
    """``recent @ co`` for a few rows, summing only the rows of ``co`` that ``recent`` touches. SciPy's product
    walks arrays the width of the catalog per call (8 ms of a 12 ms call at 170k items); this gathers the <= 10
    recent items' neighbours instead. Same values bit for bit: float64 sums added in the order SciPy adds them
    (each row's entries in stored order, then each neighbour list in order), zeros dropped; indices sorted."""
    dtype = np.result_type(recent.dtype, co.dtype)
    if dtype != np.float64:  # np.bincount sums in float64: exact only for SciPy's float64 products
        return (recent @ co).tocsr()
    n_rows, n_cols = recent.shape[0], co.shape[1]
    row = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(recent.indptr))
    _, lens, pos = _row_slices(co.indptr, recent.indices.astype(np.int64))
    keys = np.repeat(row, lens) * n_cols + co.indices[pos]
    vals = np.repeat(recent.data.astype(np.float64), lens) * co.data[pos].astype(np.float64)
    uniq, inv = np.unique(keys, return_inverse=True)
    sums = np.bincount(inv, weights=vals, minlength=len(uniq))
    nz = sums != 0
    uniq, sums = uniq[nz], sums[nz]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(uniq // n_cols, minlength=n_rows))])
    return sp.csr_matrix((sums, (uniq % n_cols).astype(np.int32), indptr), shape=(n_rows, n_cols))


def _csr_lookup(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """m[rows, cols] as a dense vector (0 where absent)."""
    m.sort_indices()
    r = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)).astype(np.int64)
    keys = r * m.shape[1] + m.indices
    q = rows.astype(np.int64) * m.shape[1] + cols
    if len(keys) == 0 or len(q) == 0:
        return np.zeros(len(q), np.float32)
    pos, found = S.find_sorted(keys, q)
    return np.where(found, m.data[pos], 0.0).astype(np.float32)
