"""User-user collaborative filtering: the 10 most similar users (cosine on their item sets) vote for items.

A neighbour's vote for an item is its similarity times its event weights on that item, so items the neighbours
interacted with often, and bought rather than viewed, rank first.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.interactions import Interactions
from recsys.recommenders.scoring import ScoringRecommender, user_item_matrix


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
        sims = (self.xn[user_codes] @ self.xn_t).toarray()  # (B, U)
        sims[np.arange(len(user_codes)), user_codes] = 0.0
        k = min(self.neighbours, sims.shape[1])
        nb = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(sims, nb, 1)
        rows = np.repeat(np.arange(len(user_codes)), k)
        weights = sp.csr_matrix((w.ravel(), (rows, nb.ravel())), shape=sims.shape)
        weights.eliminate_zeros()
        s = (weights @ self.votes).toarray()
        return np.where(s > 0, s, -np.inf).astype(np.float32)
