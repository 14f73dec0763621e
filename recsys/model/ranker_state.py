"""The ranker's state over one window of events, and the knobs of the whole ranker (``RankerConfig``).

``build_state`` computes, once per window and as of its last event, everything the candidates and features read:
per (user, item / category / brand) event counts and last times, each user's own and recent items, the items'
session co-occurrence, popularity and trend, EASE's item-item weights, and the evidence only the reasons read. This
is the lowest layer of the ranker: ``recsys.model.ranker_features`` builds candidates and feature rows from a state,
``recsys.model.ranker_training`` learns LightGBM on them, ``recsys.model.ranker`` (``RankerRecommender``) fits,
serves and stores, and ``recsys.model.reasons`` phrases the same state's evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys import schema as S
from recsys.ingest.interactions import Interactions
from recsys.recommenders.ease import ease_weights_of_pairs

VIEW_I, CART_I, PURCHASE_I = S.VIEW_CODE, S.CART_CODE, S.PURCHASE_CODE
DAY = 86400.0
CO_BLOCK_PAIRS = 20_000_000  # co-occurrence: upper bound of (item, item) entries computed at a time


@dataclass(frozen=True)
class RankerConfig:
    """Knobs of the candidate pool and the ranker (seeded; one thread; deterministic LightGBM)."""
    inner_fraction: float = 0.2     # share of the training window's events after the inner cut (labels)
    n_two_tower: int = 100          # two-tower candidates per user
    n_own: int = 100                # the user's own items, most recent first
    n_co: int = 50                  # co-occurrence neighbours of the recent items
    n_trending: int = 20            # trending items of the last week, and as many of the window's most popular
    n_ease: int = 50                # EASE's top items per user (item-item over whole histories, not sessions)
    ease_items: int = 2000          # EASE runs on the items most users touched (a dense n x n inverse)
    ease_l2: float = 200.0
    refit: bool = True              # serve with a two-tower refitted on the whole window
    recent_items: int = 10          # the recent items whose neighbours are candidates
    neighbours: int = 30            # co-occurrence neighbours kept per item
    max_session_items: int = 50     # longer sessions say little about co-occurrence and cost quadratically
    max_train_users: int = 20000    # users with labels sampled for training the ranker (all of them below this)
    buyer_share: float = 0.5        # in a larger store, this share of them drawn first from those who cart or buy
                                    # after the cut (all of them if fewer), the rest from every other active user
    n_estimators: int = 300
    train_threads: int = 2          # LightGBM's threads while training: the same trees as one thread
                                    # (deterministic=True, row-wise histograms), 8-12 s less on the demo store
    learning_rate: float = 0.05
    num_leaves: int = 31
    early_stopping: int = 30
    seed: int = 0


def pair_keys(a: np.ndarray, b: np.ndarray, n_b: int) -> np.ndarray:
    return a.astype(np.int64) * np.int64(n_b) + b.astype(np.int64)


@dataclass
class PairStats:
    """Counts per event type and the last time, per (row, column) key, sorted by key for vectorised lookups."""
    keys: np.ndarray
    counts: np.ndarray   # (K, 3) views, carts, purchases
    last: np.ndarray     # (K,) last event time

    @classmethod
    def of(cls, keys: np.ndarray, event: np.ndarray, ts: np.ndarray) -> "PairStats":
        uniq, inv = np.unique(keys, return_inverse=True)
        counts = np.zeros((len(uniq), 3), np.float32)
        for j, e in enumerate((VIEW_I, CART_I, PURCHASE_I)):
            m = event == e
            counts[:, j] = np.bincount(inv[m], minlength=len(uniq))
        last = np.full(len(uniq), np.iinfo(np.int64).min, np.int64)
        np.maximum.at(last, inv, ts)
        return cls(uniq, counts, last)

    def lookup(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(counts (Q, 3), last time, found mask) for query keys."""
        if len(self.keys) == 0:
            return np.zeros((len(q), 3), np.float32), np.zeros(len(q), np.int64), np.zeros(len(q), bool)
        pos, found = S.find_sorted(self.keys, q)
        counts = np.where(found[:, None], self.counts[pos], 0.0)
        return counts, np.where(found, self.last[pos], 0), found


@dataclass
class LastTimes:
    """The last cart and the last purchase time per (row, column) key with either (for reasons, not features)."""
    keys: np.ndarray
    last: np.ndarray     # (K, 2) last cart, last purchase; int64 min where there is none

    @classmethod
    def of(cls, keys: np.ndarray, event: np.ndarray, ts: np.ndarray) -> "LastTimes":
        m = (event == CART_I) | (event == PURCHASE_I)
        uniq, inv = np.unique(keys[m], return_inverse=True)
        last = np.full((len(uniq), 2), np.iinfo(np.int64).min, np.int64)
        for j, e in enumerate((CART_I, PURCHASE_I)):
            mm = event[m] == e
            np.maximum.at(last[:, j], inv[mm], ts[m][mm])
        return cls(uniq, last)

    def lookup(self, q: np.ndarray) -> np.ndarray:
        """(Q, 2) last cart and purchase times of query keys (int64 min where absent)."""
        out = np.full((len(q), 2), np.iinfo(np.int64).min, np.int64)
        if len(self.keys) and len(q):
            pos, found = S.find_sorted(self.keys, q)
            out[found] = self.last[pos[found]]
        return out


@dataclass
class RankerState:
    """Everything the features read, computed from one window of events (as of its last event)."""
    now: int
    ui: PairStats
    uc: PairStats
    ub: PairStats
    own: sp.csr_matrix           # (U, I) last time + 1 of each touched item (for "own" candidates)
    co: sp.csr_matrix            # (I, I) row-normalised co-occurrence, top neighbours per item
    recent: sp.csr_matrix        # (U, I) recency weights of each user's last distinct items
    pop: np.ndarray              # (I, 5) pop_1d, pop_7d, pop_all, buy_7d, buy_all
    trend: np.ndarray            # (I,)
    trending: np.ndarray         # item codes, most trending first
    user_events: np.ndarray      # (U,)
    user_items: np.ndarray       # (U,)
    user_last: np.ndarray        # (U,)
    user_logprice: np.ndarray    # (U,) mean log price of the user's priced events (nan without)
    user_vecs: np.ndarray = field(repr=False, default=None)
    # evidence for reasons only (None in a state stored before reasons existed): no feature reads them
    buy_last: LastTimes | None = None          # last cart / purchase per (user, item)
    co_bought: sp.csr_matrix | None = None     # (I, I) sessions where both were carted or bought, on co's pairs
    ease_items: np.ndarray | None = None       # EASE's item codes (sorted) and weights (n, n) over them
    ease_B: np.ndarray | None = None
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # store-wide lookups, computed once
    index: object = field(default=None, repr=False, compare=False)  # FAISS: see ranker_features._retrieval_index


def build_state(win: Interactions, cat: np.ndarray, brand: np.ndarray, log_price: np.ndarray,
                 cfg: RankerConfig, users: np.ndarray | None = None) -> RankerState:
    """The state of ``win``. ``users``: the only users whose features will be asked for (None: all of them). Their
    per-user parts (pair stats, own and recent rows, history counts) are then built from their events alone, which
    gives them the same features; item-level parts (co-occurrence, popularity, trend, EASE) always come from every
    user. Training asks for 20,000 users and the evaluation for at most 1,500: at Oct+Nov size (8.2M users) the
    per-user parts over everyone are the largest part of the state."""
    now = int(win.ts[-1]) if len(win.ts) else 0
    mine = win if users is None else win.of_users(users)
    per_user = _per_user(mine, cat, brand, log_price, cfg, now)
    co = _co_occurrence(win, cfg)
    pop, trend, trending = _popularity(win, cfg, now)
    n_i = win.n_items
    # EASE over every user's distinct items (the users' own pairs when they are everyone)
    if users is None:
        keys = per_user["ui"].keys
        ease_items, ease_b = ease_weights_of_pairs(keys // n_i, keys % n_i, n_i, cfg.ease_items, cfg.ease_l2)
    else:
        every = np.unique(pair_keys(win.user, win.item, n_i))
        ease_items, ease_b = ease_weights_of_pairs(every // n_i, every % n_i, n_i, cfg.ease_items, cfg.ease_l2)
        del every
    return RankerState(now=now, co=co, pop=pop, trend=trend, trending=trending, co_bought=_co_bought(win, co, cfg),
                       ease_items=ease_items, ease_B=ease_b, **per_user)


def _per_user(win: Interactions, cat: np.ndarray, brand: np.ndarray, log_price: np.ndarray, cfg: RankerConfig,
              now: int) -> dict:
    """The state's per-user parts from ``win``'s events (every user code keeps its row; users without events in
    ``win`` have empty ones)."""
    n_u, n_i = win.n_users, win.n_items
    ev, ts, u, i = win.event, win.ts, win.user, win.item
    ui = PairStats.of(pair_keys(u, i, n_i), ev, ts)
    uc = PairStats.of(pair_keys(u, cat[i], int(cat.max(initial=0)) + 1), ev, ts)
    ub = PairStats.of(pair_keys(u, brand[i], int(brand.max(initial=0)) + 1), ev, ts)
    uu, ii = ui.keys // n_i, ui.keys % n_i
    own = sp.csr_matrix(((ui.last - (now - 10 ** 9)).astype(np.float64), (uu, ii)), shape=(n_u, n_i))
    # recent: each user's last `recent_items` distinct items, weighted 1/rank
    order = np.lexsort((-ui.last, uu))
    ru, ri = uu[order], ii[order]
    rank = np.arange(len(ru)) - np.searchsorted(ru, ru, "left")
    keep = rank < cfg.recent_items
    recent = sp.csr_matrix((1.0 / (1.0 + rank[keep]), (ru[keep], ri[keep])), shape=(n_u, n_i))
    del order, ru, ri, rank, keep
    user_last = np.zeros(n_u, np.int64)
    np.maximum.at(user_last, u, ts)
    lp = log_price[i]
    priced = np.isfinite(lp)
    s = np.bincount(u[priced], weights=lp[priced], minlength=n_u)
    c = np.bincount(u[priced], minlength=n_u)
    with np.errstate(invalid="ignore", divide="ignore"):
        user_logprice = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return dict(ui=ui, uc=uc, ub=ub, own=own, recent=recent,
                user_events=np.bincount(u, minlength=n_u).astype(np.float32),
                user_items=np.bincount(uu, minlength=n_u).astype(np.float32), user_last=user_last,
                user_logprice=user_logprice, buy_last=LastTimes.of(pair_keys(u, i, n_i), ev, ts))


def _popularity(win: Interactions, cfg: RankerConfig, now: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(I, 5) pop_1d, pop_7d, pop_all, buy_7d, buy_all; the 7-day trend; the trending items (the week's most
    trending, then the window's most popular: what a popularity list would show)."""
    n_i, ev, ts, i = win.n_items, win.event, win.ts, win.item
    pop = np.zeros((n_i, 5), np.float32)
    in_1d, in_7d = ts >= now - DAY, ts >= now - 7 * DAY
    pop[:, 0] = np.bincount(i[in_1d], minlength=n_i)
    pop[:, 1] = np.bincount(i[in_7d], minlength=n_i)
    pop[:, 2] = np.bincount(i, minlength=n_i)
    buy = ev != VIEW_I
    pop[:, 3] = np.bincount(i[buy & in_7d], minlength=n_i)
    pop[:, 4] = np.bincount(i[buy], minlength=n_i)
    prev_7d = np.bincount(i[(ts >= now - 14 * DAY) & ~in_7d], minlength=n_i)
    trend = np.log1p(pop[:, 1]) - np.log1p(prev_7d)
    recent_top, all_top = top_popular(pop, cfg.n_trending)
    trending = np.concatenate([recent_top, all_top])
    trending = trending[np.sort(np.unique(trending, return_index=True)[1])]
    return pop, trend.astype(np.float32), trending


def top_popular(pop: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` most trending items of the last week (views + 3 x carts and purchases) and the ``n`` most
    popular of the window (events), each without items that have none; ties to the lower item code."""
    score = pop[:, 1] + 3.0 * pop[:, 3]
    recent_top = np.lexsort((np.arange(len(pop)), -score))[:n]
    all_top = np.lexsort((np.arange(len(pop)), -pop[:, 2]))[:n]
    return recent_top[score[recent_top] > 0], all_top[pop[all_top, 2] > 0]


def ease_columns(st: RankerState, n_items: int) -> np.ndarray:
    """(I,) EASE's column of each item code, -1 for an item EASE does not score (once per state)."""
    col = st.cache.get("ease_col")
    if col is None or len(col) != n_items:
        col = np.full(n_items, -1, np.int64)
        if st.ease_items is not None:
            col[st.ease_items] = np.arange(len(st.ease_items))
        st.cache["ease_col"] = col
    return col


def _co_occurrence(win: Interactions, cfg: RankerConfig) -> sp.csr_matrix:
    """(I, I) cosine of items over sessions (an item counted once per session), top ``neighbours`` per item."""
    n_i = win.n_items
    if len(win.session) == 0:
        return sp.csr_matrix((n_i, n_i), dtype=np.float32)
    _, sess = np.unique(win.session, return_inverse=True)
    m = sp.csr_matrix((np.ones(len(sess), np.float32), (sess, win.item)), shape=(int(sess.max()) + 1, n_i))
    m.sum_duplicates()
    m.data[:] = 1.0
    sizes = np.diff(m.indptr)
    m = m[(sizes >= 2) & (sizes <= cfg.max_session_items)]
    deg = np.asarray(m.sum(0)).ravel()
    mt = m.T.tocsr()
    # m.T @ m one block of item rows at a time, each block cut to its top neighbours before the next: the full
    # product (hundreds of millions of pairs at October size) never exists at once. An item's row has at most
    # the summed sizes of its sessions as entries; blocks hold about CO_BLOCK_PAIRS of them.
    work = np.cumsum(mt @ np.diff(m.indptr).astype(np.float64))
    cuts = np.searchsorted(work, np.arange(1, int(work[-1] // CO_BLOCK_PAIRS) + 1) * CO_BLOCK_PAIRS) if n_i else []
    bounds = np.unique(np.r_[0, cuts, n_i]).astype(np.int64)
    rows, cols, vals = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        c = (mt[a:b] @ m).tocoo()
        r, cl = c.row.astype(np.int64) + a, c.col.astype(np.int64)
        off = r != cl
        r, cl, d = r[off], cl[off], c.data[off]
        v = d / np.sqrt(np.maximum(deg[r] * deg[cl], 1.0))
        # top neighbours per row: sort by (row, -value, col)
        order = np.lexsort((cl, -v, r))
        r, cl, v = r[order], cl[order], v[order]
        keep = (np.arange(len(r)) - np.searchsorted(r, r, "left")) < cfg.neighbours
        rows.append(r[keep])
        cols.append(cl[keep])
        vals.append(v[keep].astype(np.float32))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_i, n_i))


def _co_bought(win: Interactions, co: sp.csr_matrix, cfg: RankerConfig) -> sp.csr_matrix:
    """(I, I) number of sessions in which both items were carted or bought, kept on ``co``'s neighbour pairs."""
    n_i = win.n_items
    m = (win.event == CART_I) | (win.event == PURCHASE_I)
    if not m.any():
        return sp.csr_matrix((n_i, n_i), dtype=np.float32)
    _, sess = np.unique(win.session[m], return_inverse=True)
    b = sp.csr_matrix((np.ones(len(sess), np.float32), (sess, win.item[m])), shape=(int(sess.max()) + 1, n_i))
    b.sum_duplicates()
    b.data[:] = 1.0
    sizes = np.diff(b.indptr)
    b = b[(sizes >= 2) & (sizes <= cfg.max_session_items)]
    both = (b.T @ b).tocsr().multiply(co.astype(bool)).tocsr()
    both.eliminate_zeros()
    return both.astype(np.float32)
