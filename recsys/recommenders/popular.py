"""Most popular: every user gets the items with the most (event-weighted) interactions in the training window."""
from __future__ import annotations

import numpy as np

from recsys.ingest.interactions import Interactions
from recsys.recommenders.scoring import ScoringRecommender


class PopularRecommender(ScoringRecommender):
    """Items ranked by summed event weights (purchase 5, cart 3, view 1), optionally over the last days only."""

    name = "popular"

    def __init__(self, window_days: float | None = None) -> None:
        self.window_days = window_days
        self.popularity: np.ndarray | None = None

    def fit(self, train: Interactions) -> "PopularRecommender":
        """Count the training window's weighted interactions per item."""
        self._remember(train)
        w = train
        if self.window_days is not None and len(train.ts):
            w = train.window(int(train.ts[-1] - self.window_days * 86400), None)
        self.popularity = np.bincount(w.item, weights=w.weights(), minlength=train.n_items).astype(np.float32)
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(user_codes), len(self.popularity))).copy()
