"""Item-item collaborative filtering: cosine similarity of items' user sets (co-occurrence), top neighbours kept.

A user's score for an item is the sum of its similarities to the items in the user's profile, each profile item
weighted by the user's event weights on it (purchase > cart > view).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.scoring import ScoringRecommender, top_k, user_item_matrix


def prune_rows(m: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Keep the ``keep`` largest entries of every row (ties to the lower column)."""
    m = m.tocsr()
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        a, b = m.indptr[r], m.indptr[r + 1]
        c, v = m.indices[a:b], m.data[a:b]
        if len(c) > keep:
            order = np.lexsort((c, -v))[:keep]
            c, v = c[order], v[order]
        rows.append(np.full(len(c), r))
        cols.append(c)
        vals.append(v)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape,
                         dtype=np.float32)


class ItemKNNRecommender(ScoringRecommender):
    """Cosine on the binary user-item co-occurrence matrix, ``neighbours`` most similar items per item."""

    name = "item_knn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours
        self.sim: sp.csr_matrix | None = None

    def fit(self, train: Interactions) -> "ItemKNNRecommender":
        """Item-item cosine similarities, pruned to the top neighbours of each item."""
        self._remember(train)
        self.profile = user_item_matrix(train)
        x = self._seen.astype(np.float32).tocsc()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(0)).ravel())
        xn = x @ sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32)
        sim = (xn.T @ xn).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.sim = prune_rows(sim, self.neighbours)
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        s = (self.profile[user_codes] @ self.sim).toarray()
        return np.where(s > 0, s, -np.inf).astype(np.float32)

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """The item's most similar items by co-occurrence cosine."""
        row = self.sim[int(item_code)].toarray()
        return top_k(np.where(row > 0, row, -np.inf).astype(np.float32), k)
