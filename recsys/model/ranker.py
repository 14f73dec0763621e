"""Two-tower retrieval + a learned ranker: candidates from several sources, re-ordered by LightGBM LambdaRank.

``fit(train)`` cuts the training window once more (the inner cut): the two-tower is trained on the events before it,
candidates and features are computed from those events, and the labels are each user's carts and purchases (graded:
purchase 3, cart 2, view 1) after it, for up to 20,000 users (all of a smaller store; in a larger one half are drawn
from the users who cart or buy after the cut, see ``ranker_training.train_users``). Two rankers are learnt: one over
every candidate, one over the candidates the user has not touched (what ``exclude_seen=True`` asks for), on the same
held-out users; each setting serves whichever orders its held-out candidates best: its own ranker, the two-tower's
scores, or (unseen items) the all-items ranker. Recommending then uses a two-tower fitted on the whole training
window (``RankerConfig.refit``; or the caller's ``retriever``, the same model) and features recomputed from that
window.

Candidates per user, each tagged with its source(s): the two-tower's top items, the user's own items, the
co-occurrence neighbours of the user's recent items (items in the same sessions), EASE's top items over the user's
whole history (item-item weights on the most-used items) and the trending items. With ``exclude_seen`` every source
proposes its best unseen items (see ``ranker_features.candidates``), and that ranker learns on that pool.
``explain`` says why a served item is listed, from its strongest evidence (``recsys.model.reasons``).

This module is ``RankerRecommender`` itself: fitting, serving (the Recommender protocol) and storage. Its layers
are beside it: ``ranker_state`` (``RankerConfig`` and the per-window state the features read), ``ranker_features``
(the candidate pool and the feature rows) and ``ranker_training`` (training users, labels, the LightGBM fit).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightgbm import LGBMRanker

from recsys import schema as S
from recsys.artifacts import Progress, load_arrays, no_progress, save_arrays
from recsys.ingest.interactions import Interactions
from recsys.model import reasons
from recsys.model.features import build_sequences
from recsys.model.ranker_features import FEATURES, features, touched
from recsys.model.ranker_state import LastTimes, PairStats, RankerConfig, RankerState, build_state, pair_keys
from recsys.model.ranker_training import MIN_TRAIN_USERS, fit_ranker, labels_for, predict, train_users
from recsys.model.towers import TwoTowerConfig
from recsys.model.train import encode_users, train_two_tower
from recsys.model.two_tower import inner_product_neighbours, window_key
from recsys.recommenders.base import Recommendations

log = logging.getLogger(__name__)

RANKER_STATE, RANKER_CONFIG = "ranker_state.npz", "ranker.json"  # the state's arrays as one .npz (older builds)
RANKER_ARRAYS = "state"  # ... now one .npy per array in this folder, memory-mapped when served


class RankerRecommender:
    """The served recommender: two-tower candidates (plus own, co-occurrence and trending) ranked by LambdaRank."""

    name = "two_tower_ranker"
    only_seen = False

    def __init__(self, config: TwoTowerConfig | None = None, ranker: RankerConfig | None = None,
                 name: str | None = None, progress: Progress = no_progress, retriever=None,
                 serve_users: np.ndarray | None = None) -> None:
        """``retriever``: a two-tower already fitted on the same window with the same config, used as the serving
        two-tower instead of training that same model again. ``serve_users``: the only user codes this fit will be
        asked about (the evaluation's scored users); the serving state's per-user parts are built for them alone
        (the same lists for them; others are refused), and such a fit is not stored. None: every user."""
        self.retriever = retriever
        self.serve_users = None if serve_users is None else np.unique(np.asarray(serve_users, np.int64))
        self.config = ranker or RankerConfig()
        self.tt_config = replace(config) if config else TwoTowerConfig()
        self.name = name or self.name
        self.progress = progress
        self.report: dict = {}
        self.state: RankerState | None = None

    # ---- fitting ----------------------------------------------------------------------------------------

    def fit(self, train: Interactions) -> "RankerRecommender":
        """Two-tower on the events before the inner cut; rankers on the labels after it; features from all."""
        cfg = self.config
        self.n_users, self.n_items = train.n_users, train.n_items
        self.cat = S.category_keys(train.catalog)
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
        rng = np.random.default_rng(cfg.seed)
        users = train_users(past, future, cfg.max_train_users, cfg.buyer_share, rng)
        # the inner window's state and feature rows live only inside _fit_rankers: gigabytes at full size, freed
        # before the serving state is built below
        n_rows, n_pos = self._fit_rankers(self._state(past, users), users, self._labels(future), rng)
        del past, future
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
        self.state = self._state(train, self.serve_users)
        return self

    def _fit_rankers(self, state: RankerState, users: np.ndarray, labels: PairStats, rng: np.random.Generator
                     ) -> tuple[int, int]:
        """Both rankers (all items, unseen items) on the inner window's candidates of ``users``; (rows, positive
        rows) of the all-items one."""
        self.rankers = {False: None, True: None}  # None: too few labels, candidates keep the two-tower's order
        if len(users) < MIN_TRAIN_USERS:
            log.warning("ranker: only %d users buy after the inner cut; serving the two-tower's order", len(users))
            return 0, 0
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
            del cand_u, cand_i, x, y
        return n_rows, n_pos

    def _state(self, win: Interactions, users: np.ndarray | None = None) -> RankerState:
        """Features' state over a window, its per-user parts and user vectors for ``users`` only (see
        ``build_state``; all users by default: the model stage serves them all; training asks for its sampled
        users, at October size 20,000 instead of 3.2M; the evaluation for the users it scores)."""
        st = build_state(win, self.cat, self.brand, self.log_price, self.config, users)
        if users is None:
            st.user_vecs = encode_users(self.model, build_sequences(win), np.arange(win.n_users), st.now)
        else:
            st.user_vecs = np.zeros((win.n_users, self.item_vecs.shape[1]), np.float32)
            st.user_vecs[users] = encode_users(self.model, build_sequences(win.of_users(users)), users, st.now)
        return st

    def _labels(self, future: Interactions) -> PairStats:
        return PairStats.of(pair_keys(future.user, future.item, self.n_items), future.event, future.ts)

    def _fit_ranker(self, users: np.ndarray, x: np.ndarray, y: np.ndarray, val_users: np.ndarray,
                    other: LGBMRanker | None = None) -> LGBMRanker | None:
        """``fit_ranker`` (``recsys.model.ranker_training``) with this ranker's config, reporting to its report."""
        return fit_ranker(self.config, self.report, users, x, y, val_users, other)

    # ---- candidates and features ------------------------------------------------------------------------

    def _batched_features(self, st: RankerState, users: np.ndarray, exclude_seen: bool, batch: int = 256
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_features`` of many users, ``batch`` at a time: the catalog-wide scores of 20,000 users at once would be
        a 13.6 GB float32 matrix at 170k items (20,000 x 170,000 x 4 bytes)."""
        parts = [self._features(st, users[s:s + batch], exclude_seen) for s in range(0, len(users), batch)]
        return tuple(np.concatenate(p) for p in zip(*parts))

    def _features(self, st: RankerState, users: np.ndarray, exclude_seen: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of ``users`` (sorted) and their feature rows: ``features`` (``recsys.model.ranker_features``)
        over this ranker's vectors and catalog keys."""
        return features(self, st, users, exclude_seen)

    # ---- storage (the model stage) ----------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """The fitted rankers (LightGBM text), the serving state and the item keys, under ``directory``."""
        if self.serve_users is not None:
            raise ValueError(f"{self.name} was fitted to serve {len(self.serve_users)} users only; fit it without "
                             f"serve_users to store it")
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
        save_arrays(directory / RANKER_ARRAYS, arrays)
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
        self.arrays_dir = directory / RANKER_ARRAYS  # memory-mapped: the service prefetches it
        a = load_arrays(self.arrays_dir, legacy_npz=directory / RANKER_STATE)
        now, self.n_users, self.n_items = (int(v) for v in a["now"])
        self.cat, self.brand, self.log_price = a["cat"], a["brand"], a["log_price"]
        pairs = {n: PairStats(a[f"{n}_keys"], a[f"{n}_counts"], a[f"{n}_last"]) for n in ("ui", "uc", "ub")}
        shapes = {"own": (self.n_users, self.n_items), "co": (self.n_items, self.n_items),
                  "recent": (self.n_users, self.n_items), "co_bought": (self.n_items, self.n_items)}
        mats = {n: sp.csr_matrix((a[f"{n}_data"], a[f"{n}_indices"], a[f"{n}_indptr"]), shape=shapes[n])
                for n in shapes if f"{n}_data" in a}
        self.state = RankerState(now, pairs["ui"], pairs["uc"], pairs["ub"], mats["own"], mats["co"],
                                 mats["recent"], a["pop"], a["trend"], a["trending"], a["user_events"],
                                 a["user_items"], a["user_last"], a["user_logprice"], a["user_vecs"],
                                 buy_last=LastTimes(a["buy_keys"], a["buy_last"]) if "buy_keys" in a else None,
                                 co_bought=mats.get("co_bought"), ease_items=a.get("ease_items"),
                                 ease_B=a.get("ease_B"))
        self.rankers = {}
        for ex in (False, True):
            f = directory / f"ranker_exclude_seen_{ex}.txt"
            self.rankers[ex] = lgb.Booster(model_str=f.read_text()) if f.exists() else None
            if self.rankers[ex] is not None and self.rankers[ex].num_feature() != len(FEATURES):
                raise ValueError(f"{f} was trained on {self.rankers[ex].num_feature()} features and this version "
                                 f"computes {len(FEATURES)}: rebuild the model stage (python -m recsys build)")
        reasons.store_ranks(self)  # O(I log I) once, not on the first served call
        return self

    # ---- the Recommender protocol -----------------------------------------------------------------------

    def score_candidates(self, users: np.ndarray, *, exclude_seen: bool = False
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Ranked candidates of ``users``: (user, item, ranker score, features); with exclude_seen, every item the
        user touched in the window is dropped (not only the ``n_own`` recent ones proposed as own items)."""
        if self.state is None:
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        users = np.unique(np.asarray(users, np.int64))
        if self.serve_users is not None and not np.isin(users, self.serve_users).all():
            raise ValueError(f"{self.name} was fitted to serve {len(self.serve_users)} users only (serve_users), "
                             f"and was asked about others")
        u, i, x = self._features(self.state, users, exclude_seen)
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
        return reasons.explain(self, user_code, np.asarray(items, np.int64), x, labels, exclude_seen=exclude_seen,
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
