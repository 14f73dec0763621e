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
    items = _most_used(np.asarray(seen.sum(0)).ravel(), max_items)
    return items, _weights(seen[:, items].astype(np.float64), l2)


def ease_weights_of_pairs(users: np.ndarray, items: np.ndarray, n_items: int, max_items: int, l2: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """``ease_weights`` of the binary matrix whose ones are the distinct (user, item) pairs given, without that
    matrix over every item: only the pairs of the items kept become a (users, max_items) matrix. The same items
    and the same B, bit for bit (the Gram matrix counts pairs, exactly, in float64)."""
    keep = _most_used(np.bincount(items, minlength=n_items), max_items)
    col = np.full(n_items, -1, np.int64)
    col[keep] = np.arange(len(keep))
    m = col[items] >= 0
    n_rows = int(users.max()) + 1 if len(users) else 0
    x = sp.csr_matrix((np.ones(int(m.sum())), (users[m], col[items[m]])), shape=(n_rows, len(keep)))
    return keep, _weights(x, l2)


def _most_used(users_per_item: np.ndarray, max_items: int) -> np.ndarray:
    """The ``max_items`` items with the most users (ties to the lower item code), those with none left out,
    sorted."""
    order = np.lexsort((np.arange(len(users_per_item)), -users_per_item))
    return np.sort(order[:max_items][users_per_item[order[:max_items]] > 0])


def _weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """B of a binary (users, n) float64 matrix: float32 (n, n)."""
    g = (x.T @ x).toarray()
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)
