"""The one protocol every recommender implements, so evaluation, pages and the API loop over them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from recsys.ingest.interactions import Interactions


@dataclass
class Recommendations:
    """Top-k item codes and scores per requested user, best first; -1 pads lists shorter than k."""
    items: np.ndarray   # (n_users, k) int64 item codes
    scores: np.ndarray  # (n_users, k) float32


@runtime_checkable
class Recommender(Protocol):
    """Fit on a training window; recommend for users (by code); similar items where the model has them."""

    name: str
    only_seen: bool  # True: lists only the user's own items, so it has no exclude_seen=True results

    def fit(self, train: Interactions) -> "Recommender":
        """Learn from the training window; returns self."""
        ...

    def recommend(self, user_codes: np.ndarray, k: int, *, exclude_seen: bool = False) -> Recommendations:
        """Top-k items for each user code; ``exclude_seen`` drops items the user interacted with in training."""
        ...

    def recommend_settings(self, user_codes: np.ndarray, k: int,
                           settings: tuple[bool, ...] = (False, True)) -> dict[bool, Recommendations]:
        """``recommend`` for several exclude_seen settings at once (one scoring pass where the model can)."""
        ...

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Top-k items most like one item (one row); NotImplementedError where the model has no item space."""
        ...
