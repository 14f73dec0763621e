"""User-user collaborative filtering: the 10 most similar users (cosine on their item sets) vote for items.

A neighbour's vote for an item is its similarity times its event weights on that item, so items the neighbours
interacted with often, and bought rather than viewed, rank first.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.ingest.interactions import Interactions
from recsys.recommenders.scoring import ScoringRecommender, user_item_matrix

SUB_BATCH = 32  # users per similarity product: bounds its memory on millions of users


class UserKNNRecommender(ScoringRecommender):
    """Votes of the ``neighbours`` nearest users by cosine similarity."""

    name = "user_knn"

    def __init__(self, neighbours: int = 10) -> None:
        self.neighbours = neighbours

    def fit(self, train: Interactions) -> "UserKNNRecommender":
        """Keep the normalised binary user vectors and the weighted user-item matrix."""
        self._remember(train)
        self.votes = user_item_matrix(train)
        x = self._seen.astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        self.xn = (sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ x).tocsr()
        self.xn_t = self.xn.T.tocsr()
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        out = np.empty((len(user_codes), self.n_items), dtype=np.float32)
        for s in range(0, len(user_codes), SUB_BATCH):
            out[s:s + SUB_BATCH] = self._scores_sparse(user_codes[s:s + SUB_BATCH])
        return out

    def _scores_sparse(self, user_codes: np.ndarray) -> np.ndarray:
        """Scores for a few users, never densifying the (users x all users) similarity matrix: at October size
        (3.2M users) one dense float32 block of 512 users is 6.5 GB, and the evaluation ran out of 24 GB."""
        sims = (self.xn[user_codes] @ self.xn_t).tocsr()
        rows, cols, vals = [], [], []
        for r, u in enumerate(user_codes):
            c = sims.indices[sims.indptr[r]:sims.indptr[r + 1]]
            v = sims.data[sims.indptr[r]:sims.indptr[r + 1]]
            keep = (c != u) & (v > 0)
            c, v = c[keep], v[keep]
            if len(c) > self.neighbours:  # the top neighbours, ties to the lower user code
                cut = np.partition(v, len(v) - self.neighbours)[len(v) - self.neighbours]
                c, v = c[v >= cut], v[v >= cut]
                order = np.lexsort((c, -v))[:self.neighbours]
                c, v = c[order], v[order]
            rows.append(np.full(len(c), r))
            cols.append(c)
            vals.append(v)
        weights = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(len(user_codes), self.n_users), dtype=np.float32)
        s = (weights @ self.votes).toarray()
        return np.where(s > 0, s, -np.inf).astype(np.float32)
