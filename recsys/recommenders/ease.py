"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): a closed-form item-item model.

B = argmin ||X - XB||^2 + lambda ||B||^2 subject to diag(B) = 0, solved as P = (X'X + lambda I)^-1,
B = -P / diag(P) (column-wise), diag(B) = 0. X is the binary user-item matrix. The inverse is dense in the number
of items, so on a large catalog EASE runs on the ``max_items`` items with the most users (the rest are scored
-inf, i.e. never recommended): 5,000 items is a 200 MB matrix and a few seconds of one thread.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.ingest.interactions import Interactions
from recsys.recommenders.scoring import ScoringRecommender


class EASERecommender(ScoringRecommender):
    """Scores = the user's binary item row times B, on the ``max_items`` most-used items."""

    name = "ease"

    def __init__(self, l2: float = 200.0, max_items: int = 5000) -> None:
        if l2 <= 0:
            raise ValueError(f"l2 must be positive (got {l2})")
        self.l2 = float(l2)
        self.max_items = int(max_items)
        self.items: np.ndarray | None = None
        self.B: np.ndarray | None = None

    def fit(self, train: Interactions) -> "EASERecommender":
        """The closed-form weights over the most-used items (ties in use to the lower item code)."""
        self._remember(train)
        self.items, self.B = ease_weights(self._seen, self.max_items, self.l2)
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        out = np.full((len(user_codes), self.n_items), -np.inf, np.float32)
        if self.items is None or len(self.items) == 0:
            return out
        x = self._seen[user_codes][:, self.items]
        s = np.asarray(x @ self.B, dtype=np.float32)
        has = np.asarray(x.sum(1)).ravel() > 0
        out[np.ix_(has, self.items)] = s[has]
        return out


def ease_weights(seen: sp.csr_matrix, max_items: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """(item codes, B): the closed-form weights over the ``max_items`` items most users touched in ``seen`` (a
    binary (users, items) matrix; ties in use to the lower item code), items sorted, B float32 (n, n)."""
    users_per_item = np.asarray(seen.sum(0)).ravel()
    order = np.lexsort((np.arange(len(users_per_item)), -users_per_item))
    items = np.sort(order[:max_items][users_per_item[order[:max_items]] > 0])
    x = seen[:, items].astype(np.float64)
    g = (x.T @ x).toarray()
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return items, b.astype(np.float32)
