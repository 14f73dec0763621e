"""Shared machinery of the baselines: the user-item matrix, exact top-k with -1 padding, a scoring base class.

A model that can score every catalog item for a batch of users subclasses :class:`ScoringRecommender` and only
writes ``fit`` and ``_scores``; ``-inf`` marks an item the model will not recommend (no evidence), so short lists
are padded with -1 instead of filled with arbitrary items. Ties break by the lower item code (deterministic).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.ingest.interactions import Interactions
from recsys.ranking import top_k
from recsys.recommenders.base import Recommendations

BATCH = 512


def user_item_matrix(train: Interactions, *, weighted: bool = True, binary: bool = False) -> sp.csr_matrix:
    """(n_users, n_items) CSR of summed event weights (purchase > cart > view), or 1/0 with ``binary``."""
    data = train.weights() if weighted else np.ones(len(train.user), np.float32)
    m = sp.csr_matrix((data.astype(np.float32), (train.user, train.item)),
                      shape=(train.n_users, train.n_items), dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    if binary:
        m.data[:] = 1.0
    return m


def top_recommendations(scores: np.ndarray, k: int) -> Recommendations:
    """:func:`recsys.ranking.top_k` of (B, I) scores as Recommendations: -inf entries become -1 padding."""
    items, vals = top_k(scores, k)
    return Recommendations(items, vals.astype(np.float32, copy=False))


class ScoringRecommender:
    """Base for models that score the whole catalog: batching, exclude_seen and top-k live here."""

    name = "scoring"
    only_seen = False
    _seen: sp.csr_matrix | None = None

    def _remember(self, train: Interactions) -> None:
        """Keep what exclude_seen needs: which items each user touched in training."""
        self._seen = user_item_matrix(train, weighted=False, binary=True)
        self.n_items = train.n_items
        self.n_users = train.n_users

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        """(B, n_items) float32 scores; -inf where the model has nothing to say."""
        raise NotImplementedError

    def recommend(self, user_codes: np.ndarray, k: int, *, exclude_seen: bool = False) -> Recommendations:
        """Top-k item codes per user code (see the protocol)."""
        return self._top_k_settings(user_codes, k, (exclude_seen,))[exclude_seen]

    def recommend_settings(self, user_codes: np.ndarray, k: int,
                           settings: tuple[bool, ...] = (False, True)) -> dict[bool, Recommendations]:
        """Top-k lists for several exclude_seen settings from one scoring pass (the evaluation needs both)."""
        return self._top_k_settings(user_codes, k, settings)

    def _top_k_settings(self, user_codes: np.ndarray, k: int,
                        settings: tuple[bool, ...]) -> dict[bool, Recommendations]:
        if self._seen is None:
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        if k < 1:
            raise ValueError(f"k must be >= 1 (got {k})")
        users = np.asarray(user_codes, dtype=np.int64).ravel()
        if len(users) and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"{self.name}: user codes must be in [0, {self.n_users})")
        parts: dict[bool, list[Recommendations]] = {ex: [] for ex in settings}
        for s in range(0, len(users), BATCH):
            batch = users[s:s + BATCH]
            sc = np.asarray(self._scores(batch), dtype=np.float32)
            for ex in sorted(settings):  # False first: the in-place mask below only ever adds -inf
                if ex:
                    seen = self._seen[batch]
                    rows = np.repeat(np.arange(len(batch)), np.diff(seen.indptr))
                    sc[rows, seen.indices] = -np.inf
                parts[ex].append(top_recommendations(sc, k))
        out = {}
        for ex, recs in parts.items():
            if recs:
                out[ex] = Recommendations(np.concatenate([r.items for r in recs]),
                                          np.concatenate([r.scores for r in recs]))
            else:
                out[ex] = Recommendations(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
        return out

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Not available for this model."""
        raise NotImplementedError(f"{self.name} has no item similarity")


def item_vector_neighbours(vectors: np.ndarray, item_code: int, k: int) -> Recommendations:
    """Top-k items by cosine similarity to one item's vector (the item itself excluded)."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    s = (v @ v[item_code]).astype(np.float32)[None, :]
    s[0, item_code] = -np.inf
    return top_recommendations(s, k)
