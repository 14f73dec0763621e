"""Recently viewed / recently bought: the user's own items from the training window, most recent first.

These baselines only ever recommend items the user already touched, so with ``exclude_seen`` their lists are
empty (all -1) by construction; they measure how much of the future is repeat behaviour.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys import schema as S
from recsys.ingest.interactions import Interactions
from recsys.recommenders.scoring import ScoringRecommender

MODES = {"viewed": (S.VIEW, S.CART, S.PURCHASE), "bought": (S.PURCHASE,)}


class RecentRecommender(ScoringRecommender):
    """The user's items ordered by their last interaction: any event ("viewed") or purchases ("bought")."""

    only_seen = True

    def __init__(self, mode: str = "viewed") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        self.mode = mode
        self.name = f"recently_{mode}"
        self.last: sp.csr_matrix | None = None

    def fit(self, train: Interactions) -> "RecentRecommender":
        """Remember each user's last interaction time per item (events of this mode only)."""
        self._remember(train)
        codes = [S.EVENT_CODE[t] for t in MODES[self.mode]]
        keep = np.isin(train.event, codes)
        u, i, t = train.user[keep], train.item[keep], train.ts[keep]
        # ts is sorted ascending, so the last occurrence of a (user, item) pair is its latest time
        key = u.astype(np.int64) * train.n_items + i
        _, last_idx = np.unique(key[::-1], return_index=True)
        idx = len(key) - 1 - last_idx
        base = float(train.ts[0]) if len(train.ts) else 0.0
        rel = (t[idx] - base + 1).astype(np.float64)  # > 0, later is larger
        self.last = sp.csr_matrix((rel, (u[idx], i[idx])), shape=(train.n_users, train.n_items))
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        rows = self.last[user_codes]
        out = np.full(rows.shape, -np.inf, dtype=np.float32)
        r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        out[r, rows.indices] = rows.data
        return out
