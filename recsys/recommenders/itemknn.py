"""Item-item collaborative filtering: cosine similarity of items' user sets (co-occurrence), top neighbours kept.

The neighbour matrix comes from the ``implicit`` package's :class:`CosineRecommender` (one thread) on the binary
user x item matrix. A user's score for an item is the sum of its similarities to the items in the user's profile,
each profile item weighted by the user's event weights on it (purchase > cart > view).
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import CosineRecommender
from implicit.utils import ParameterWarning

from recsys.ingest.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.scoring import ScoringRecommender, top_recommendations, user_item_matrix


def drop_self(sim: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Row i = item i's neighbours without i itself, at most ``keep`` per row, float32."""
    sim = sim.tocsr()
    n = sim.shape[0]
    row = np.repeat(np.arange(n), np.diff(sim.indptr))
    ok = (sim.indices != row) & (sim.data > 0)
    row, col, val = row[ok], sim.indices[ok], sim.data[ok]
    over = np.flatnonzero(np.bincount(row, minlength=n)[row] > keep)
    if len(over):  # ties at cosine 1 crowded the item itself out: trim those rows (ties to the lower column)
        over = over[np.lexsort((col[over], -val[over], row[over]))]
        rank = np.arange(len(over)) - np.searchsorted(row[over], row[over])
        ok = np.ones(len(row), bool)
        ok[over[rank >= keep]] = False
        row, col, val = row[ok], col[ok], val[ok]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))])
    return sp.csr_matrix((val.astype(np.float32), col, indptr), shape=sim.shape)


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
        # implicit's K nearest include the item itself (cosine 1), hence one more than wanted; CosineRecommender
        # hands its own normalised COO matrix to the kNN and warns about that on every fit
        knn = CosineRecommender(K=self.neighbours + 1, num_threads=1)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input", category=ParameterWarning)
            knn.fit(self._seen, show_progress=False)
        self.sim = drop_self(knn.similarity, self.neighbours)  # (I, I), row i = neighbours of item i
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        s = (self.profile[user_codes] @ self.sim).toarray()
        return np.where(s > 0, s, -np.inf).astype(np.float32)

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """The item's most similar items by co-occurrence cosine."""
        row = self.sim[int(item_code)].toarray()
        return top_recommendations(np.where(row > 0, row, -np.inf).astype(np.float32), k)
