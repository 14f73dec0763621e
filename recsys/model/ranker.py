"""Two-tower retrieval + a learned ranker: candidates from several sources, re-ordered by LightGBM LambdaRank.

``fit(train)`` cuts the training window once more (the inner cut): the two-tower is trained on the events before
it, candidates and features are computed from those events, and the labels are each user's carts and purchases
(graded: purchase 3, cart 2, view 1) after it, for up to 20,000 users (all of a smaller store; in a larger one
half are drawn from the users who cart or buy after the cut, see ``train_users``). Two rankers are learnt: one over
every candidate, one over the candidates the user has not touched (what ``exclude_seen=True`` asks for), on the
same held-out users; each setting serves whichever orders its held-out candidates best: its own ranker, the
two-tower's scores, or (unseen items) the all-items ranker. Recommending then uses a two-tower fitted on the whole
training window (``RankerConfig.refit``; or the caller's ``retriever``, the same model) and features recomputed
from that window.

Candidates per user, each tagged with its source(s): the two-tower's top items, the user's own items, the
co-occurrence neighbours of the user's recent items (items in the same sessions), EASE's top items over the user's
whole history (item-item weights on the most-used items) and the trending items. With ``exclude_seen`` every source
proposes its best unseen items (see ``_candidates``), and that ranker learns on that pool.
``explain`` says why a served item is listed, from its strongest evidence (``recsys.model.reasons``).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightgbm import Booster, LGBMRanker
from lightgbm.callback import CallbackEnv, EarlyStopException

from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.diversity import category_keys
from recsys.ingest.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.ease import ease_weights
from recsys.model.retrieval import retrieval_index, retrieve, top_columns
from recsys.model.two_tower import inner_product_neighbours, window_key
from recsys.model.features import build_sequences
from recsys.model.towers import TwoTowerConfig
from recsys.model.train import encode_users, train_two_tower

log = logging.getLogger(__name__)

VIEW_I, CART_I, PURCHASE_I = S.VIEW_CODE, S.CART_CODE, S.PURCHASE_CODE
DAY = 86400.0
RANKER_STATE, RANKER_CONFIG = "ranker_state.npz", "ranker.json"
MIN_TRAIN_USERS = 10  # users with a label after the inner cut needed to learn a ranker
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


def _pair_keys(a: np.ndarray, b: np.ndarray, n_b: int) -> np.ndarray:
    return a.astype(np.int64) * np.int64(n_b) + b.astype(np.int64)


@dataclass
class _PairStats:
    """Counts per event type and the last time, per (row, column) key, sorted by key for vectorised lookups."""
    keys: np.ndarray
    counts: np.ndarray   # (K, 3) views, carts, purchases
    last: np.ndarray     # (K,) last event time

    @classmethod
    def of(cls, keys: np.ndarray, event: np.ndarray, ts: np.ndarray) -> "_PairStats":
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
        pos = np.clip(np.searchsorted(self.keys, q), 0, len(self.keys) - 1)
        found = self.keys[pos] == q
        counts = np.where(found[:, None], self.counts[pos], 0.0)
        return counts, np.where(found, self.last[pos], 0), found


@dataclass
class _LastTimes:
    """The last cart and the last purchase time per (row, column) key with either (for reasons, not features)."""
    keys: np.ndarray
    last: np.ndarray     # (K, 2) last cart, last purchase; int64 min where there is none

    @classmethod
    def of(cls, keys: np.ndarray, event: np.ndarray, ts: np.ndarray) -> "_LastTimes":
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
            pos = np.clip(np.searchsorted(self.keys, q), 0, len(self.keys) - 1)
            found = self.keys[pos] == q
            out[found] = self.last[pos[found]]
        return out


@dataclass
class _State:
    """Everything the features read, computed from one window of events (as of its last event)."""
    now: int
    ui: _PairStats
    uc: _PairStats
    ub: _PairStats
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
    buy_last: _LastTimes | None = None         # last cart / purchase per (user, item)
    co_bought: sp.csr_matrix | None = None     # (I, I) sessions where both were carted or bought, on co's pairs
    ease_items: np.ndarray | None = None       # EASE's item codes (sorted) and weights (n, n) over them
    ease_B: np.ndarray | None = None
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # store-wide lookups, computed once
    index: object = field(default=None, repr=False, compare=False)  # FAISS, over the item vectors: see _index


def _build_state(win: Interactions, cat: np.ndarray, brand: np.ndarray, log_price: np.ndarray,
                 cfg: RankerConfig) -> _State:
    n_u, n_i = win.n_users, win.n_items
    now = int(win.ts[-1]) if len(win.ts) else 0
    ev, ts, u, i = win.event, win.ts, win.user, win.item
    ui = _PairStats.of(_pair_keys(u, i, n_i), ev, ts)
    uc = _PairStats.of(_pair_keys(u, cat[i], int(cat.max(initial=0)) + 1), ev, ts)
    ub = _PairStats.of(_pair_keys(u, brand[i], int(brand.max(initial=0)) + 1), ev, ts)
    uu, ii = ui.keys // n_i, ui.keys % n_i
    own = sp.csr_matrix(((ui.last - (now - 10 ** 9)).astype(np.float64), (uu, ii)), shape=(n_u, n_i))
    # recent: each user's last `recent_items` distinct items, weighted 1/rank
    order = np.lexsort((-ui.last, uu))
    ru, ri = uu[order], ii[order]
    start = np.searchsorted(ru, ru, "left")
    rank = np.arange(len(ru)) - start
    keep = rank < cfg.recent_items
    recent = sp.csr_matrix((1.0 / (1.0 + rank[keep]), (ru[keep], ri[keep])), shape=(n_u, n_i))
    co = _co_occurrence(win, cfg)
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
    # the trending items of the last week, then the window's most popular (what a popularity list would show)
    recent_top, all_top = _top_popular(pop, cfg.n_trending)
    trending = np.concatenate([recent_top, all_top])
    trending = trending[np.sort(np.unique(trending, return_index=True)[1])]
    user_events = np.bincount(u, minlength=n_u).astype(np.float32)
    user_items = np.bincount(uu, minlength=n_u).astype(np.float32)
    user_last = np.zeros(n_u, np.int64)
    np.maximum.at(user_last, u, ts)
    lp = log_price[i]
    priced = np.isfinite(lp)
    s = np.bincount(u[priced], weights=lp[priced], minlength=n_u)
    c = np.bincount(u[priced], minlength=n_u)
    with np.errstate(invalid="ignore", divide="ignore"):
        user_logprice = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    ease_items, ease_b = ease_weights(own.astype(bool).astype(np.float64).tocsr(), cfg.ease_items, cfg.ease_l2)
    return _State(now, ui, uc, ub, own, co, recent, pop, trend.astype(np.float32), trending,
                  user_events, user_items, user_last, user_logprice,
                  buy_last=_LastTimes.of(_pair_keys(u, i, n_i), ev, ts), co_bought=_co_bought(win, co, cfg),
                  ease_items=ease_items, ease_B=ease_b)


def _top_popular(pop: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` most trending items of the last week (views + 3 x carts and purchases) and the ``n`` most
    popular of the window (events), each without items that have none; ties to the lower item code."""
    score = pop[:, 1] + 3.0 * pop[:, 3]
    recent_top = np.lexsort((np.arange(len(pop)), -score))[:n]
    all_top = np.lexsort((np.arange(len(pop)), -pop[:, 2]))[:n]
    return recent_top[score[recent_top] > 0], all_top[pop[all_top, 2] > 0]


def ease_columns(st: _State, n_items: int) -> np.ndarray:
    """(I,) EASE's column of each item code, -1 for an item EASE does not score (once per state)."""
    col = st.cache.get("ease_col")
    if col is None or len(col) != n_items:
        col = np.full(n_items, -1, np.int64)
        if st.ease_items is not None:
            col[st.ease_items] = np.arange(len(st.ease_items))
        st.cache["ease_col"] = col
    return col


def _ease_scores(st: _State, own: sp.csr_matrix) -> np.ndarray:
    """(B, n) EASE scores, over EASE's n items, of the users whose touched items are ``own``'s rows."""
    n_b, n_i = own.shape
    col = ease_columns(st, n_i)
    if st.ease_items is None or len(st.ease_items) == 0:
        return np.zeros((n_b, 0), np.float32)
    rows = np.repeat(np.arange(n_b), np.diff(own.indptr))
    c = col[own.indices]
    x = sp.csr_matrix((np.ones(int((c >= 0).sum()), np.float32), (rows[c >= 0], c[c >= 0])),
                      shape=(n_b, len(st.ease_items)))
    return np.asarray(x @ st.ease_B, np.float32)  # a few rows of B summed per user


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
    c = (m.T @ m).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    deg = np.asarray(m.sum(0)).ravel()
    c = c.tocoo()
    vals = c.data / np.sqrt(np.maximum(deg[c.row] * deg[c.col], 1.0))
    # top neighbours per row: sort by (row, -value, col)
    order = np.lexsort((c.col, -vals, c.row))
    r, cl, v = c.row[order], c.col[order], vals[order]
    start = np.searchsorted(r, r, "left")
    keep = (np.arange(len(r)) - start) < cfg.neighbours
    return sp.csr_matrix((v[keep].astype(np.float32), (r[keep], cl[keep])), shape=(n_i, n_i))


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


class RankerRecommender:
    """The served recommender: two-tower candidates (plus own, co-occurrence and trending) ranked by LambdaRank."""

    name = "two_tower_ranker"
    only_seen = False

    def __init__(self, config: TwoTowerConfig | None = None, ranker: RankerConfig | None = None,
                 name: str | None = None, progress: Progress = no_progress, retriever=None) -> None:
        """``retriever``: a two-tower already fitted on the same window with the same config, used as the serving
        two-tower instead of training that same model again."""
        self.retriever = retriever
        self.config = ranker or RankerConfig()
        self.tt_config = replace(config) if config else TwoTowerConfig()
        self.name = name or self.name
        self.progress = progress
        self.report: dict = {}
        self.state: _State | None = None

    # ---- fitting ----------------------------------------------------------------------------------------

    def fit(self, train: Interactions) -> "RankerRecommender":
        """Two-tower on the events before the inner cut; rankers on the labels after it; features from all."""
        cfg = self.config
        self.n_users, self.n_items = train.n_users, train.n_items
        self.cat = category_keys(train.catalog)
        self.brand = pd.factorize(train.catalog[S.BRAND].astype(str))[0].astype(np.int64)
        price = train.catalog[S.PRICE].to_numpy(np.float64)
        with np.errstate(divide="ignore"):
            self.log_price = np.where(price > 0, np.log(np.maximum(price, 1e-9)), np.nan)
        if len(train.ts) < 2:
            raise ValueError("too few events to train the ranker")
        cut = int(train.ts[min(len(train.ts) - 1, int(len(train.ts) * (1 - cfg.inner_fraction)))])
        past, future = train.window(None, cut), train.window(cut, None)
        if len(past.ts) == 0 or len(future.ts) == 0:
            raise ValueError("the training window is too short for an inner time split")
        self.progress(0.05, "two-tower on the inner window")
        self.model, self.report = train_two_tower(past, self.tt_config,
                                                  lambda f, m: self.progress(0.05 + 0.6 * f, m))
        self.item_vecs = self.model.all_item_vectors().astype(np.float32)
        self.progress(0.7, "ranker features")
        labels = self._labels(future)
        rng = np.random.default_rng(cfg.seed)
        users = train_users(past, future, cfg.max_train_users, cfg.buyer_share, rng)
        state = self._state(past, users)
        self.rankers = {False: None, True: None}  # None: too few labels, candidates keep the two-tower's order
        if len(users) >= MIN_TRAIN_USERS:
            val_users = rng.choice(users, max(1, len(users) // 5), replace=False)  # held out from both rankers
            for ex in (False, True):
                # each setting learns on the pool it serves (unseen items: each source's best unseen items)
                cand_u, cand_i, x = self._batched_features(state, users, ex)
                y = labels_for(labels, cand_u, cand_i, self.n_items)
                self.progress(0.8 + 0.1 * ex, f"ranker ({'new items' if ex else 'all items'})")
                # unseen items: a ranker of their own, or the all-items ranker if it orders them better
                self.rankers[ex] = self._fit_ranker(cand_u, x, y, val_users, self.rankers[False] if ex else None)
                if not ex:
                    n_rows, n_pos = len(y), int((y > 0).sum())
        else:
            log.warning("ranker: only %d users buy after the inner cut; serving the two-tower's order", len(users))
            n_rows = n_pos = 0
        self.report.update(ranker={"inner_cut": cut, "train_users": int(len(users)), "rows": n_rows,
                                   "positive_rows": n_pos,
                                   "trees": {str(k): int(v.best_iteration_ or v.n_estimators)
                                             for k, v in self.rankers.items() if v is not None}})
        # serve with a two-tower refitted on the whole window (the ranker learnt how far to trust its scores from
        # the inner-window model, which never saw the labels): the newest behaviour shapes the candidates too
        if cfg.refit:
            self.progress(0.85, "two-tower on the whole window")
            r = self.retriever
            if r is not None and getattr(r, "fitted_on", None) == window_key(train) and r.config == self.tt_config:
                self.model, full = r.model, r.report
            else:
                self.model, full = train_two_tower(train, self.tt_config,
                                                   lambda f, m: self.progress(0.85 + 0.1 * f, m))
            self.report["serving_two_tower"] = full
            self.item_vecs = self.model.all_item_vectors().astype(np.float32)
        self.retriever = None  # not kept: the evaluation drops fitted models once scored
        self.progress(0.95, "ranker features over the whole window")
        self.state = self._state(train)
        return self

    def _state(self, win: Interactions, users: np.ndarray | None = None) -> _State:
        """Features' state over a window; user vectors for ``users`` only (all users by default: serving needs
        them all, training only its sampled users: at October size that is 20,000 users instead of 3.2M)."""
        st = _build_state(win, self.cat, self.brand, self.log_price, self.config)
        if users is None:
            st.user_vecs = encode_users(self.model, build_sequences(win), np.arange(win.n_users), st.now)
        else:
            st.user_vecs = np.zeros((win.n_users, self.item_vecs.shape[1]), np.float32)
            st.user_vecs[users] = encode_users(self.model, build_sequences(win), users, st.now)
        return st

    def _labels(self, future: Interactions) -> _PairStats:
        return _PairStats.of(_pair_keys(future.user, future.item, self.n_items), future.event, future.ts)

    def _fit_ranker(self, users: np.ndarray, x: np.ndarray, y: np.ndarray, val_users: np.ndarray,
                    other: LGBMRanker | None = None) -> LGBMRanker | None:
        """A LambdaRank model over these rows, early-stopped on ``val_users``; returned only if it orders their
        candidates better than the two-tower does (and than ``other``, returned instead when that one is best)."""
        grp_users, starts = np.unique(users, return_index=True)
        has_pos = np.add.reduceat(y > 0, starts) > 0 if len(starts) else np.zeros(0, bool)
        grp_users = grp_users[has_pos]
        is_val = np.isin(users, val_users)
        if len(grp_users) < MIN_TRAIN_USERS or not is_val[np.isin(users, grp_users)].any():
            return None
        in_grp = np.isin(users, grp_users)
        parts = {}
        for name, m in (("train", in_grp & ~is_val), ("val", in_grp & is_val)):
            _, counts = np.unique(users[m], return_counts=True)  # users are sorted: rows are grouped
            parts[name] = (x[m], y[m], counts)
        c = self.config
        model = LGBMRanker(objective="lambdarank", n_estimators=c.n_estimators, learning_rate=c.learning_rate,
                           num_leaves=c.num_leaves, min_child_samples=20, subsample=0.8, subsample_freq=1,
                           colsample_bytree=0.8, random_state=c.seed, num_threads=c.train_threads, deterministic=True,
                           force_row_wise=True, verbose=-1, label_gain=[0, 1, 3, 7])
        model.fit(parts["train"][0], parts["train"][1], group=parts["train"][2],
                  eval_X=(parts["val"][0],), eval_y=(parts["val"][1],), eval_group=[parts["val"][2]], eval_at=[20],
                  callbacks=[smoothed_early_stopping(c.early_stopping)])
        # keep the ranker only where it beats the two-tower's own order on the held-out users (same candidates)
        xv, yv, cv = parts["val"]
        scores = {"ranker": group_ndcg(yv, predict(model, xv), cv),
                  "two_tower": group_ndcg(yv, xv[:, FEATURES.index("tt_score")], cv)}
        if other is not None:
            scores["all_items_ranker"] = group_ndcg(yv, predict(other, xv), cv)
        self.report.setdefault("validation", []).append({f"ndcg@20_{k}": round(v, 4) for k, v in scores.items()})
        best = max(scores, key=lambda k: (scores[k], k == "ranker"))  # ties: the model trained for these rows
        return {"ranker": model, "two_tower": None, "all_items_ranker": other}[best]

    # ---- candidates and features ------------------------------------------------------------------------

    def _candidates(self, st: _State, users: np.ndarray, co: sp.csr_matrix, ease: np.ndarray,
                    exclude_seen: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user, item, source bits) rows, sorted by user then item; tt scores come along in the features.

        With ``exclude_seen`` each source proposes its best items among those the user has not touched (the
        two-tower's top ``n_two_tower`` unseen items, not its top items less the seen ones), and no own items: the
        pool then holds every item the two-tower alone would list, whatever the history's length."""
        cfg = self.config
        rows_u, rows_i, rows_s = [], [], []

        def add(u, i, bit):
            rows_u.append(np.asarray(u, np.int64)), rows_i.append(np.asarray(i, np.int64))
            rows_s.append(np.full(len(u), 1 << bit, np.int64))

        own = st.own[users]
        own_row = np.repeat(np.arange(len(users)), np.diff(own.indptr))  # (row, own.indices): the touched items
        if exclude_seen:
            co = (co - co.multiply(own.astype(bool))).tocsr()
            co.eliminate_zeros()
        r, top = retrieve(self._index(st), self.item_vecs, st.user_vecs[users], cfg.n_two_tower,
                          own if exclude_seen else None)
        add(users[r], top, 0)
        if not exclude_seen:
            add(*_top_per_row(own, users, cfg.n_own), 1)
        add(*_top_per_row(co, users, cfg.n_co), 2)
        if exclude_seen:  # each user's most trending and most popular unseen items
            lists = st.cache.get(("unseen_trending", cfg.n_trending))
            if lists is None:
                lists = st.cache[("unseen_trending", cfg.n_trending)] = _top_popular(st.pop, 4 * cfg.n_trending)
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
                c = ease_columns(st, self.n_items)[own.indices]
                e[own_row[c >= 0], c[c >= 0]] = -np.inf
            k = min(cfg.n_ease, e.shape[1])
            top = top_columns(e, k)
            ok = np.isfinite(np.take_along_axis(e, top, 1)).ravel()
            add(np.repeat(users, k)[ok], st.ease_items[top.ravel()[ok]], 4)
        u, i, s = np.concatenate(rows_u), np.concatenate(rows_i), np.concatenate(rows_s)
        key = _pair_keys(u, i, self.n_items)
        uniq, inv = np.unique(key, return_inverse=True)
        bits = np.zeros(len(uniq), np.int64)
        np.bitwise_or.at(bits, inv, s)
        return uniq // self.n_items, uniq % self.n_items, bits

    def _batched_features(self, st: _State, users: np.ndarray, exclude_seen: bool, batch: int = 256
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_features`` of many users, ``batch`` at a time: the catalog-wide scores of 20,000 users at once would be
        a 13.6 GB float32 matrix at 170k items (20,000 x 170,000 x 4 bytes)."""
        parts = [self._features(st, users[s:s + batch], exclude_seen) for s in range(0, len(users), batch)]
        return tuple(np.concatenate(p) for p in zip(*parts))

    def _features(self, st: _State, users: np.ndarray, exclude_seen: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of ``users`` (sorted) and their (rows, len(FEATURES)) float32 feature matrix; with
        ``exclude_seen``, the pool of unseen items (see ``_candidates``)."""
        users = np.asarray(users, np.int64)
        co = _co_scores(st.recent[users], st.co)  # (B, I) co-occurrence with each user's recent items
        ease = _ease_scores(st, st.own[users])
        u, i, bits = self._candidates(st, users, co, ease, exclude_seen)
        f = np.zeros((len(u), len(FEATURES)), np.float32)
        col = {n: j for j, n in enumerate(FEATURES)}
        tt = np.einsum("nd,nd->n", st.user_vecs[u], self.item_vecs[i])
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
        c, last, found = st.ui.lookup(_pair_keys(u, i, self.n_items))
        f[:, col["ui_views"]:col["ui_purchases"] + 1] = c
        f[:, col["ui_days_since"]] = days(last, found)
        n_cat, n_brand = self._key_counts()
        c, last, found = st.uc.lookup(_pair_keys(u, self.cat[i], n_cat))
        f[:, col["uc_views"]:col["uc_purchases"] + 1] = c
        f[:, col["uc_days_since"]] = days(last, found)
        c, _, _ = st.ub.lookup(_pair_keys(u, self.brand[i], n_brand))
        f[:, col["ub_views"]:col["ub_purchases"] + 1] = c
        f[:, col["pop_1d"]:col["buy_all"] + 1] = np.log1p(st.pop[i])
        f[:, col["trend_7d"]] = st.trend[i]
        f[:, col["co_score"]] = _csr_lookup(co, np.searchsorted(users, u), i)
        ease_col = ease_columns(st, self.n_items)[i]
        f[:, col["ease_score"]] = np.where(ease_col >= 0, ease[np.searchsorted(users, u), np.maximum(ease_col, 0)]
                                           if ease.shape[1] else 0.0, 0.0)
        with np.errstate(invalid="ignore"):
            ratio = self.log_price[i] - st.user_logprice[u]
        f[:, col["price_ratio"]] = np.where(np.isfinite(ratio), ratio, 0.0)
        f[:, col["hist_events"]] = np.log1p(st.user_events[u])
        f[:, col["hist_items"]] = np.log1p(st.user_items[u])
        f[:, col["user_days_since"]] = (st.now - st.user_last[u]) / DAY
        for b, s in enumerate(SOURCES):
            f[:, col[f"src_{s}"]] = (bits >> b) & 1
        return u, i, f

    def _index(self, st: _State):
        """The two-tower's retrieval index for a state's candidates: the index stage's when serving (set on load),
        else built once over the current item vectors with the same parameters (``recsys.model.retrieval``)."""
        if st.index is None:
            st.index = retrieval_index(self.item_vecs)
        return st.index

    def _key_counts(self) -> tuple[int, int]:
        """Category and brand key counts (max + 1) of the catalog, once per catalog: a max over the 170k items'
        keys on every call cost ~0.1 ms."""
        got = getattr(self, "_keys_of", None)
        if got is None or got[0] is not self.cat or got[1] is not self.brand:
            got = self._keys_of = (self.cat, self.brand, int(self.cat.max(initial=0)) + 1,
                                   int(self.brand.max(initial=0)) + 1)
        return got[2], got[3]

    # ---- storage (the model stage) ----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """The fitted rankers (LightGBM text), the serving state and the item keys, under ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        st = self.state
        arrays = {"cat": self.cat, "brand": self.brand, "log_price": self.log_price, "pop": st.pop,
                  "trend": st.trend, "trending": st.trending, "user_events": st.user_events,
                  "user_items": st.user_items, "user_last": st.user_last, "user_logprice": st.user_logprice,
                  "user_vecs": st.user_vecs, "now": np.array([st.now, self.n_users, self.n_items])}
        for name in ("ui", "uc", "ub"):
            ps = getattr(st, name)
            arrays.update({f"{name}_keys": ps.keys, f"{name}_counts": ps.counts, f"{name}_last": ps.last})
        if st.buy_last is not None:
            arrays.update(buy_keys=st.buy_last.keys, buy_last=st.buy_last.last)
        if st.ease_items is not None:
            arrays.update(ease_items=st.ease_items, ease_B=st.ease_B)
        for name in ("own", "co", "recent", "co_bought"):
            m = getattr(st, name)
            if m is not None:
                m = m.tocsr()
                arrays.update({f"{name}_data": m.data, f"{name}_indices": m.indices, f"{name}_indptr": m.indptr})
        np.savez(directory / RANKER_STATE, **arrays)
        for ex, model in self.rankers.items():
            if model is not None:
                (directory / f"ranker_exclude_seen_{ex}.txt").write_text(model.booster_.model_to_string())
        (directory / RANKER_CONFIG).write_text(json.dumps({"ranker": asdict(self.config), "report": self.report},
                                                          default=str))

    @classmethod
    def load(cls, directory: Path, model, item_vecs: np.ndarray) -> "RankerRecommender":
        """A stored ranker, serving with ``model`` (the model stage's two-tower) and its item vectors."""
        import lightgbm as lgb
        meta = json.loads((directory / RANKER_CONFIG).read_text())
        self = cls(ranker=RankerConfig(**meta["ranker"]))
        self.report, self.model, self.item_vecs = meta.get("report", {}), model, item_vecs
        with np.load(directory / RANKER_STATE) as z:
            a = {k: z[k] for k in z.files}
        now, self.n_users, self.n_items = (int(v) for v in a["now"])
        self.cat, self.brand, self.log_price = a["cat"], a["brand"], a["log_price"]
        pairs = {n: _PairStats(a[f"{n}_keys"], a[f"{n}_counts"], a[f"{n}_last"]) for n in ("ui", "uc", "ub")}
        shapes = {"own": (self.n_users, self.n_items), "co": (self.n_items, self.n_items),
                  "recent": (self.n_users, self.n_items), "co_bought": (self.n_items, self.n_items)}
        mats = {n: sp.csr_matrix((a[f"{n}_data"], a[f"{n}_indices"], a[f"{n}_indptr"]), shape=shapes[n])
                for n in shapes if f"{n}_data" in a}
        self.state = _State(now, pairs["ui"], pairs["uc"], pairs["ub"], mats["own"], mats["co"], mats["recent"],
                            a["pop"], a["trend"], a["trending"], a["user_events"], a["user_items"], a["user_last"],
                            a["user_logprice"], a["user_vecs"],
                            buy_last=_LastTimes(a["buy_keys"], a["buy_last"]) if "buy_keys" in a else None,
                            co_bought=mats.get("co_bought"), ease_items=a.get("ease_items"),
                            ease_B=a.get("ease_B"))
        self.rankers = {}
        for ex in (False, True):
            f = directory / f"ranker_exclude_seen_{ex}.txt"
            self.rankers[ex] = lgb.Booster(model_str=f.read_text()) if f.exists() else None
            if self.rankers[ex] is not None and self.rankers[ex].num_feature() != len(FEATURES):
                raise ValueError(f"{f} was trained on {self.rankers[ex].num_feature()} features and this version "
                                 f"computes {len(FEATURES)}: rebuild the model stage (python -m recsys build)")
        from recsys.model.reasons import store_ranks
        store_ranks(self)  # O(I log I) once, not on the first served call
        return self

    # ---- the Recommender protocol -----------------------------------------------------------------------

    def score_candidates(self, users: np.ndarray, *, exclude_seen: bool = False
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ranked candidates of ``users``: (user, item, ranker score, features); with exclude_seen, every item the
        user touched in the window is dropped (not only the ``n_own`` recent ones proposed as own items)."""
        if self.state is None:
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        u, i, x = self._features(self.state, np.unique(np.asarray(users, np.int64)), exclude_seen)
        if exclude_seen:
            keep = ~touched(x)
            u, i, x = u[keep], i[keep], x[keep]
        model = self.rankers.get(exclude_seen)
        s = predict(model, x) if model is not None and len(x) else x[:, FEATURES.index("tt_score")]
        return u, i, np.asarray(s, np.float32), x

    def rank_user(self, user_code: int, k: int, *, exclude_seen: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One user's top-k (item codes, ranker scores, feature rows): the order ``recommend`` gives."""
        _, i, sc, x = self.score_candidates(np.array([user_code]), exclude_seen=exclude_seen)
        order = np.lexsort((i, -sc))[:k]
        return i[order], sc[order], x[order]

    def explain(self, user_code: int, items: np.ndarray, x: np.ndarray, labels: np.ndarray, *,
                exclude_seen: bool = False, **context) -> dict[str, list | np.ndarray]:
        """Why each of ``items`` (with its feature rows from ``rank_user``) is listed for one user: columns kind,
        reason, source, because (item code or -1). ``context``: see ``recsys.model.reasons.explain``."""
        from recsys.model.reasons import explain
        return explain(self, user_code, np.asarray(items, np.int64), x, labels, exclude_seen=exclude_seen,
                       **context)

    def recommend_settings(self, user_codes: np.ndarray, k: int,
                           settings: tuple[bool, ...] = (False, True)) -> dict[bool, Recommendations]:
        """``recommend`` per setting (each setting ranks its own candidate pool)."""
        return {ex: self.recommend(user_codes, k, exclude_seen=ex) for ex in settings}

    def recommend(self, user_codes: np.ndarray, k: int, *, exclude_seen: bool = False,
                  batch: int = 256) -> Recommendations:
        """Top-k per user code: the ranker's order over the candidate pool, ties to the lower item code."""
        users = np.asarray(user_codes, np.int64).ravel()
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"{self.name}: user codes must be in [0, {self.n_users})")
        items = np.full((len(users), k), -1, np.int64)
        scores = np.full((len(users), k), -np.inf, np.float32)
        row_of = {}
        for r, uc in enumerate(users):
            row_of.setdefault(int(uc), []).append(r)
        uniq = np.unique(users)
        for s in range(0, len(uniq), batch):
            u, i, sc, _ = self.score_candidates(uniq[s:s + batch], exclude_seen=exclude_seen)
            order = np.lexsort((i, -sc, u))
            u, i, sc = u[order], i[order], sc[order]
            start = np.searchsorted(u, u, "left")
            rank = np.arange(len(u)) - start
            keep = rank < k
            for uc, it, scv, rk in zip(u[keep], i[keep], sc[keep], rank[keep]):
                for r in row_of[int(uc)]:
                    items[r, rk], scores[r, rk] = it, scv
        return Recommendations(items, scores)

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Nearest items by the two-tower's item vectors."""
        return inner_product_neighbours(self.item_vecs, item_code, k)


def smoothed_early_stopping(patience: int, window: int = 5):
    """A LightGBM callback: stop when the validation metric's moving average over ``window`` rounds has not
    risen for ``patience`` rounds, keeping the round where that average peaked (ties to the later round; the
    first ``window - 1`` rounds, averaged over fewer rounds, are not candidates).

    LightGBM's own ``early_stopping`` keeps the first round with the best raw score: on a few hundred validation
    users NDCG moves by a few thousandths from round to round, so a lucky third round (0.9405 against 0.9403
    thirty rounds on, a planted store) stopped training at three trees."""
    hist: list[float] = []
    best = {"round": 0, "score": -np.inf, "list": None}

    def callback(env: CallbackEnv) -> None:
        result = env.evaluation_result_list[0]  # (data name, metric, value, higher is better)
        hist.append(float(result[2]))
        smooth = float(np.mean(hist[-window:]))
        if len(hist) >= min(window, patience) and smooth >= best["score"]:  # a full window: one round is noise
            best.update(round=env.iteration, score=smooth, list=env.evaluation_result_list)
        if env.iteration - best["round"] >= patience:
            raise EarlyStopException(best["round"], best["list"])

    callback.order = 30  # where LightGBM runs its own early stopping
    return callback


def train_users(past: Interactions, future: Interactions, n: int, buyer_share: float,
                rng: np.random.Generator) -> np.ndarray:
    """The ranker's training users (sorted): users with events before the inner cut and a view, cart or purchase
    after it; at most ``n``: ``buyer_share`` of ``n`` drawn first from those who cart or buy after it (all of them
    if fewer), the rest from the users not drawn yet, so a store whose visitors rarely buy still gives the ranker
    buyers to learn from."""
    has_past = np.bincount(past.user, minlength=past.n_users) > 0

    def after(events):
        u = np.unique(future.user[np.isin(future.event, events)])
        return u[has_past[u]]
    users = after((VIEW_I, CART_I, PURCHASE_I))
    if len(users) <= n:
        return users
    buyers = after((CART_I, PURCHASE_I))
    n_buy = min(len(buyers), int(round(buyer_share * n)))
    picked = rng.choice(buyers, n_buy, replace=False)  # drawing none leaves the generator's state alone
    rest = np.setdiff1d(users, picked, assume_unique=True)
    return np.sort(np.concatenate([picked, rng.choice(rest, n - n_buy, replace=False)]))


def predict(model, x: np.ndarray, **kwargs) -> np.ndarray:
    """LightGBM scores of rows on one thread, whatever the model was trained with. A loaded Booster would use every
    core: one user's ~150 candidates at 82 trees took 12 ms with OpenMP's spin-waits on a busy 2-core box, 0.6 ms on
    one thread (same scores)."""
    if isinstance(model, (Booster, LGBMRanker)):
        kwargs["num_threads"] = 1
    return np.asarray(model.predict(x, **kwargs))


def touched(x: np.ndarray) -> np.ndarray:
    """Rows whose user viewed, carted or bought the item in the window (what exclude_seen leaves out)."""
    return x[:, [FEATURES.index(f) for f in ("ui_views", "ui_carts", "ui_purchases")]].sum(1) > 0


def labels_for(labels: _PairStats, u: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    """Graded relevance of each (user, item) row: 3 bought, 2 carted, 1 viewed after the cut, else 0."""
    c, _, found = labels.lookup(_pair_keys(u, i, n_items))
    y = np.zeros(len(u), np.int32)
    y[c[:, 0] > 0] = 1
    y[c[:, 1] > 0] = 2
    y[c[:, 2] > 0] = 3
    return y


def group_ndcg(y: np.ndarray, scores: np.ndarray, counts: np.ndarray, k: int = 20) -> float:
    """Mean NDCG@k (gain 2^y - 1) over consecutive groups of ``counts`` rows, ties to the earlier row."""
    out, s = [], 0
    for n in counts:
        yy, ss = y[s:s + n].astype(np.float64), scores[s:s + n]
        s += n
        disc = 1.0 / np.log2(np.arange(2, min(k, n) + 2))
        got = (2 ** yy[np.argsort(-ss, kind="stable")][:k] - 1) @ disc
        ideal = (2 ** np.sort(yy)[::-1][:k] - 1) @ disc
        if ideal > 0:
            out.append(got / ideal)
    return float(np.mean(out)) if out else 0.0


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
    item = recent.indices.astype(np.int64)
    lo, lens = co.indptr[item].astype(np.int64), np.diff(co.indptr)[item].astype(np.int64)
    pos = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()), dtype=np.int64)
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
    pos = np.clip(np.searchsorted(keys, q), 0, len(keys) - 1)
    return np.where(keys[pos] == q, m.data[pos], 0.0).astype(np.float32)
