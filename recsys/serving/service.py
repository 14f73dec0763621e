"""Serving the two-tower model: a loaded-once, read-only service behind every recommendation in the product.

One call = user tower forward (history as of the last event) -> FAISS retrieval of a candidate pool ->
category-aware MMR -> labels and reasons looked up by item code (numpy arrays, O(k)). When the two-tower + ranker
serves, the pool is the ranker's best candidates and each listed item's reason comes from the ranker's strongest
evidence for it (``recsys.model.reasons``), with the candidate source(s) that proposed it. Safe to share
between threads: nothing is mutated after loading (the ranker's store-wide ranks are computed when it loads).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.ingest.adapters import load_product_names
from recsys.artifacts import MANIFEST, artifacts_root, prefetch, read_manifest
from recsys.diversity import category_coverage, intra_list_diversity, rerank_mmr
from recsys.model.features import CART_I, PURCHASE_I, VIEW_I, behaviour_features, pad_history
from recsys.index.stage import STAGE as INDEX_STAGE, load_index
from recsys.model.towers import load_checkpoint, numpy_user_tower
from recsys.model.store import CHECKPOINT, HISTORIES, MODEL_STAGE, PURCHASES, RANKER_DIR, ModelArtifacts

COLUMNS = ["rank", S.PRODUCT_ID, S.BRAND, "category", S.CATEGORY_ID, S.PRICE, "score", "reason", "source",
           "because_product_id"]
TWO_TOWER = "two-tower"  # the source of every item the two-tower alone lists
VERBS = {VIEW_I: "viewed", CART_I: "added to cart", PURCHASE_I: "bought"}
MIN_POOL = 100


def pool_size(top_n: int) -> int:
    """Candidates retrieved before re-ranking. The same pool at every weight, so coverage compares like with like;
    wide enough for diversity (a focused user's top 50 can sit in one category: on the real REES46 head one
    user's top 50 held 1 category, the top 100 held 10)."""
    return max(MIN_POOL, 10 * top_n)


class RecommenderService:
    """The trained model, item embeddings, FAISS index and label arrays of one artifacts directory."""

    def __init__(self, root: str | os.PathLike | None = None, *, prefetch_state: bool = True):
        self.root = artifacts_root(root)
        art = ModelArtifacts.load(self.root)
        self.art = art
        self.model = load_checkpoint(art.directory / CHECKPOINT, art.features)
        self.user_tower = numpy_user_tower(self.model)  # torch per-op overhead would dominate one user
        self.index = load_index(self.root)
        # One query at a time: FAISS's OpenMP threads only add spin-waits (a busy 2-core box measured 30 ms
        # per call with the default threads, 3 ms with one). Process-wide, which suits a serving process.
        faiss.omp_set_num_threads(1)
        self.index_facts = (read_manifest(self.root, INDEX_STAGE) or {}).get("index", {})
        self.item_vecs = np.ascontiguousarray(art.item_vecs, dtype=np.float32)
        cat = art.catalog
        self.product_ids = cat[S.PRODUCT_ID].to_numpy(np.int64)
        self.brands = cat[S.BRAND].astype("string").fillna(S.UNKNOWN_BRAND).to_numpy(object)
        self.categories = cat[S.CATEGORY_CODE].astype("string").fillna(S.UNKNOWN_CATEGORY).to_numpy(object)
        self.prices = cat[S.PRICE].to_numpy(np.float64)
        self.category_ids = cat[S.CATEGORY_ID].to_numpy(np.int64)
        self.cat_key = S.category_keys(cat)
        names = load_product_names(self.root)  # a purchase log's descriptions (UCI); None for REES46
        named = {} if names is None else {int(p): f"{n} #{c}" for p, n, c in
                                          zip(names["product_id"], names["name"], names["stock_code"]) if n}
        self.labels = np.array([named.get(int(p)) or f"{b if b != S.UNKNOWN_BRAND else 'unbranded'} "
                                f"{c.rsplit('.', 1)[-1] if c != S.UNKNOWN_CATEGORY else 'product'} #{p}"
                                for b, c, p in zip(self.brands, self.categories, self.product_ids)], dtype=object)
        self.user_ids = art.user_ids
        self.now = int(art.manifest.get("now_ts", int(art.histories.ts.max(initial=0))))
        rep = art.manifest.get("repurchase", {})
        self.repurchase_rate = float(rep.get("repurchase_rate", 0.0))
        self.exclude_purchased_default = bool(rep.get("exclude_purchased_default", True))
        self.history_len = self.model.config.history_len
        self.ranker = None  # the served two-tower + ranker; without one (tiny stores) the two-tower alone serves
        if (art.directory / RANKER_DIR / "ranker.json").exists():
            from recsys.model.ranker import RankerRecommender
            self.ranker = RankerRecommender.load(art.directory / RANKER_DIR, self.model, self.item_vecs)
            self.ranker.state.index = self.index  # its two-tower candidates come from the served index
        # the memory-mapped serving state into the page cache, in the background: first calls then find it there.
        # Off for the app: reading 10 GB at Oct+Nov from a cold cache competed for the disk with the Recommender
        # page's own first visit (23-27 s with it, 12-13 s without), which makes a single call, not hundreds.
        self._state_dirs = [art.directory / HISTORIES, art.directory / PURCHASES,
                            *([self.ranker.arrays_dir] if self.ranker is not None else [])]
        self.prefetched: list = []
        self._prefetch_asked = False
        if prefetch_state:
            self.start_prefetch()
        self.source = "two-tower + ranker" if self.ranker is not None else "two-tower"
        if self.ranker is not None:  # the ranker learnt how likely a repeat is: it decides, not a store-wide rule
            self.exclude_purchased_default = False

    def start_prefetch(self) -> list:
        """Read the memory-mapped serving state into the page cache in the background (``recsys.artifacts.prefetch``),
        once per service: the files advised, [] when the state is over its memory budget or was advised before."""
        with _LOCK_PREFETCH:
            if self._prefetch_asked:
                return []
            self._prefetch_asked = True
        self.prefetched = prefetch(self._state_dirs)
        return self.prefetched

    # ---- lookups ------------------------------------------------------------------------------------------

    def user_code(self, user_id: int) -> int:
        """Code of a raw user id; KeyError with a plain message when the store has no such user."""
        try:
            uid = int(user_id)
        except (TypeError, ValueError):
            raise ValueError(f"user_id must be an integer (got {user_id!r})") from None
        i = int(np.searchsorted(self.user_ids, uid))
        if i >= len(self.user_ids) or self.user_ids[i] != uid:
            raise KeyError(f"unknown user_id {uid}: this store has no events for that user "
                           f"({len(self.user_ids):,} users are known); for a new visitor, recommend from "
                           f"product ids with recommend_for_products")
        return i

    def item_codes(self, product_ids: Sequence[int]) -> np.ndarray:
        """Codes of product ids; ValueError naming the ids the catalog does not have."""
        ids = np.asarray([int(p) for p in product_ids], dtype=np.int64)
        pos, ok = S.find_sorted(self.product_ids, ids)
        if not ok.all():
            raise ValueError(f"unknown product_id(s) {ids[~ok][:5].tolist()}: not in this store's catalog")
        return pos.astype(np.int64)

    def history(self, user_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The user's last merged events the model sees: (item codes, event type codes, ts), oldest first."""
        return self.art.histories.last(self.user_code(user_id), self.history_len)

    def purchased(self, user_code: int) -> np.ndarray:
        """Distinct item codes the user bought."""
        o = self.art.purchase_offsets
        return self.art.purchase_items[o[user_code]:o[user_code + 1]]

    # ---- the model ---------------------------------------------------------------------------------------

    def user_vector(self, items: np.ndarray, events: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """User tower over one history (oldest first) as of the store's last event: (dim,) unit vector."""
        hi, he, ht, hm = pad_history(np.asarray(items, np.int64), np.asarray(events, np.int8),
                                     np.asarray(ts, np.int64), self.history_len)
        beh = behaviour_features(he, ht, hm, np.array([self.now]))
        return self.user_tower(hi, he.astype(np.int64), hm, beh)[0].astype(np.float32)

    def retrieve(self, vec: np.ndarray, pool: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``pool`` item codes by inner product (FAISS), minus ``exclude``: (codes, scores)."""
        n_ex = 0 if exclude is None else len(exclude)
        k = min(len(self.item_vecs), pool + n_ex)
        scores, codes = self.index.search(np.ascontiguousarray(vec[None, :], dtype=np.float32), k)
        codes, scores = codes[0], scores[0]
        keep = codes >= 0
        if n_ex:
            keep &= ~np.isin(codes, exclude)
        return codes[keep][:pool], scores[keep][:pool]

    def _explain(self, codes: np.ndarray, hist_items: np.ndarray, hist_events: np.ndarray) -> tuple[list, list]:
        """For each recommended code, the history item most similar to it (by item embedding) and a sentence."""
        if len(hist_items) == 0:
            return ["popular with shoppers like you"] * len(codes), [None] * len(codes)
        sims = self.item_vecs[codes] @ self.item_vecs[hist_items].T  # (k, H)
        best = sims.argmax(1)
        reasons, because = [], []
        for c, b in zip(codes, best):
            h = int(hist_items[b])
            verb = VERBS.get(int(hist_events[b]), "viewed")
            reasons.append(f"because you {verb} it recently" if h == c else f"because you {verb} {self.labels[h]}")
            because.append(int(self.product_ids[h]))
        return reasons, because

    def _explain_ranked(self, user_code: int, codes: np.ndarray, x: np.ndarray, pool: np.ndarray,
                        hist_items: np.ndarray) -> tuple[list, list, list]:
        """The ranker's reasons for the listed codes (``x`` their feature rows, ``pool`` all the candidates'),
        days back from the store's now: reasons, because product ids, sources."""
        why = self.ranker.explain(user_code, codes, x, self.labels, now=self.now, history=hist_items,
                                  categories=self.categories, brands=self.brands, pool=pool)
        because = [int(self.product_ids[b]) if b >= 0 else None for b in why["because"]]
        return why["reason"], because, why["source"]

    def _finish(self, codes: np.ndarray, scores: np.ndarray, hist_items: np.ndarray, hist_events: np.ndarray,
                top_n: int, diversity_weight: float, explain=None) -> pd.DataFrame:
        """MMR over the pool, then labels and reasons; the frame's attrs carry the list's diversity metrics.
        ``explain(positions)``: reasons, because and sources of those pool positions (default: the two-tower's)."""
        order = rerank_mmr(codes, scores, self.cat_key[codes], top_n, diversity_weight)
        c, s = codes[order], scores[order]
        if explain is None:
            reasons, because = self._explain(c, hist_items, hist_events)
            sources = [TWO_TOWER] * len(c)
        else:
            reasons, because, sources = explain(order)
        df = pd.DataFrame({
            "rank": np.arange(1, len(c) + 1), S.PRODUCT_ID: self.product_ids[c], S.BRAND: self.brands[c],
            "category": self.categories[c], S.CATEGORY_ID: self.category_ids[c], S.PRICE: self.prices[c],
            "score": s.astype(np.float64), "reason": reasons, "source": sources,
            "because_product_id": _nullable_ints(because)})
        df.attrs.update(list_metrics(self.cat_key[c], self.cat_key[codes], s))
        df.attrs["diversity_weight"] = float(diversity_weight)
        return df

    # ---- public calls ------------------------------------------------------------------------------------

    def recommend_for_user(self, user_id: int, top_n: int = 10, diversity_weight: float = 0.3,
                           exclude_purchased: bool | None = None) -> pd.DataFrame:
        """Top-n products for a known user, best first, each with why it is listed (``reason``), the candidate
        source(s) that proposed it (``source``) and the item that supports it (``because_product_id``)."""
        _check(top_n, diversity_weight)
        code = self.user_code(user_id)
        exclude = self._exclusions(code, exclude_purchased)
        if self.ranker is None:
            return self._two_tower(code, top_n, diversity_weight, exclude)
        items, events, _ = self.art.histories.last(code, self.history_len)
        codes, scores, x = self.ranked(code, pool_size(top_n), exclude)
        return self._finish(codes, scores, items, events, top_n, diversity_weight,
                            lambda pos: self._explain_ranked(code, codes[pos], x[pos], x, items))

    def two_tower_for_user(self, user_id: int, top_n: int = 10, exclude_purchased: bool | None = None
                           ) -> pd.DataFrame:
        """The two-tower's own list for a known user (its retrieval order, source "two-tower"): what the ranker
        re-orders, to show beside the served list."""
        _check(top_n, 0.0)
        code = self.user_code(user_id)
        return self._two_tower(code, top_n, 0.0, self._exclusions(code, exclude_purchased))

    def _two_tower(self, code: int, top_n: int, diversity_weight: float, exclude: np.ndarray | None) -> pd.DataFrame:
        items, events, ts = self.art.histories.last(code, self.history_len)
        codes, scores = self.retrieve(self.user_vector(items, events, ts), pool_size(top_n), exclude)
        return self._finish(codes, scores, items, events, top_n, diversity_weight)

    def _exclusions(self, user_code: int, exclude_purchased: bool | None) -> np.ndarray | None:
        if exclude_purchased is None:
            exclude_purchased = self.exclude_purchased_default
        return self.purchased(user_code) if exclude_purchased else None

    def ranked(self, user_code: int, pool: int, exclude: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ranker's best ``pool`` candidates of one user, minus ``exclude``: (codes, scores, feature rows), the
        evaluated order (ranker score, ties to the lower item code)."""
        codes, scores, x = self.ranker.rank_user(user_code, pool + (0 if exclude is None else len(exclude)))
        keep = np.ones(len(codes), bool)
        if exclude is not None and len(exclude):
            keep &= ~np.isin(codes, exclude)
        return codes[keep][:pool], scores[keep][:pool], x[keep][:pool]

    def recommend_for_products(self, product_ids: Sequence[int], top_n: int = 10,
                               diversity_weight: float = 0.3) -> pd.DataFrame:
        """Top-n products for a new visitor who viewed ``product_ids`` (in that order); those are excluded."""
        _check(top_n, diversity_weight)
        if len(product_ids) == 0:
            raise ValueError("give at least one product_id to recommend for a new visitor")
        items = self.item_codes(product_ids)
        events = np.full(len(items), VIEW_I, np.int8)
        ts = np.full(len(items), self.now, np.int64)
        vec = self.user_vector(items, events, ts)
        codes, scores = self.retrieve(vec, pool_size(top_n), np.unique(items))
        return self._finish(codes, scores, items, events, top_n, diversity_weight)

    def similar_products(self, product_id: int, k: int = 10) -> pd.DataFrame:
        """The k products whose item embeddings are closest (cold-start products included)."""
        _check(k, 0.0)
        code = self.item_codes([product_id])
        codes, scores = self.retrieve(self.item_vecs[code[0]], k, code)
        df = self._finish(codes, scores, code, np.array([VIEW_I]), k, 0.0)
        df["reason"] = f"similar to {self.labels[code[0]]}"
        return df

    def info(self) -> dict[str, Any]:
        """Facts for pages and the API: sizes, index kind and recall, repurchase rate, training report."""
        m = self.art.manifest
        return {"items": len(self.product_ids), "users": len(self.user_ids), "index": self.index_facts,
                "repurchase_rate": self.repurchase_rate, "exclude_purchased_default": self.exclude_purchased_default,
                "served": self.source,
                "train": m.get("train", {}), "now_ts": self.now}


def list_metrics(list_categories: np.ndarray, pool_categories: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Intra-list category diversity, coverage of the pool's categories, and mean relevance of one list."""
    return {"intra_list_diversity": intra_list_diversity(list_categories),
            "category_coverage": category_coverage(list_categories, pool_categories),
            "categories": int(len(np.unique(list_categories))),
            "mean_score": float(np.mean(scores)) if len(scores) else float("nan")}


def _nullable_ints(values: list) -> pd.arrays.IntegerArray:
    """A nullable Int64 column from ints and Nones (``pd.array(values, dtype="Int64")`` infers the type of each
    value first: 0.3 ms for a list of 10)."""
    missing = np.array([v is None for v in values], bool)
    return pd.arrays.IntegerArray(np.array([0 if v is None else v for v in values], np.int64), missing)


def _check(top_n: int, diversity_weight: float) -> None:
    if not isinstance(top_n, (int, np.integer)) or top_n < 1:
        raise ValueError(f"top_n must be a positive integer (got {top_n!r})")
    if not 0.0 <= float(diversity_weight) <= 1.0:
        raise ValueError(f"diversity_weight must be between 0 and 1 (got {diversity_weight})")


def _stamp(path) -> tuple[int, int, int] | None:
    """Which version of a manifest file is on disk: (inode, size, mtime). A stage writes its manifest to a temporary
    file and renames it, so a rebuild changes the inode. Cheaper than reading and parsing the manifests on every
    call (0.25-0.6 ms of a ~9 ms served call at Oct+Nov)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


_SERVICES: dict[tuple, RecommenderService] = {}
_LOCK = threading.Lock()
_LOCK_PREFETCH = threading.Lock()


def load_recommender_service(root: str | os.PathLike | None = None, *, prefetch_state: bool = True
                              ) -> RecommenderService:
    """The service for an artifacts directory, loaded once per build (a rebuild loads the new model);
    ``prefetch_state`` reads its memory-mapped state into the page cache in the background (the API and CLI), also
    when the cached service was first loaded without it."""
    base = artifacts_root(root)
    key = (str(base.resolve()), *(_stamp(base / s / MANIFEST) for s in (MODEL_STAGE, INDEX_STAGE)))
    with _LOCK:
        svc = _SERVICES.get(key)
        if svc is None:
            svc = RecommenderService(base, prefetch_state=prefetch_state)
            for old in [k for k in _SERVICES if k[0] == key[0]]:  # one loaded build per directory
                del _SERVICES[old]
            _SERVICES[key] = svc
    if prefetch_state and not svc._prefetch_asked:  # a service first loaded without it (the app) is asked now
        svc.start_prefetch()
    return svc


def recommend_products_for_user(user_id: int, top_n: int = 10, diversity_weight: float = 0.3,
                                artifacts: str | os.PathLike | None = None,
                                exclude_purchased: bool | None = None) -> pd.DataFrame:
    """Top-n products for a user: product_id, brand, category, price, score, a reason a person can read, the
    candidate source(s) and the product the reason names, best first.

    ``exclude_purchased=None`` keeps purchased items when the ranker serves (it learnt how likely a repeat is, and
    that is the setting the evaluation scores), else follows the store's measured repurchase rate.
    """
    return load_recommender_service(artifacts).recommend_for_user(user_id, top_n, diversity_weight,
                                                                  exclude_purchased)
