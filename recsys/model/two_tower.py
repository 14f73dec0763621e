"""The two-tower model behind the ``Recommender`` protocol, optionally with category-aware MMR re-ranking.

``fit`` trains on the given window only (its own early-stopping split is the window's last days), so the
evaluation's test window never leaks in. Training time is bounded by ``TwoTowerConfig.max_seconds``.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.diversity import rerank_mmr
from recsys.ingest.interactions import Interactions
from recsys.recommenders.base import Recommendations
from recsys.recommenders.scoring import ScoringRecommender, top_recommendations
from recsys.model.features import build_sequences
from recsys.model.towers import TwoTowerConfig
from recsys.model.train import encode_users, train_two_tower


def window_key(win: Interactions) -> tuple[int, int, int, int]:
    """What tells two event windows of one store apart: sizes and first / last times."""
    n = len(win.ts)
    return (n, win.n_users, int(win.ts[0]) if n else 0, int(win.ts[-1]) if n else 0)


class TwoTowerRecommender(ScoringRecommender):
    """Scores = user vector . item vector; ``diversity_weight > 0`` re-ranks a pool of ``pool_factor * k``."""

    def __init__(self, config: TwoTowerConfig | None = None, diversity_weight: float = 0.0, pool_factor: int = 5,
                 name: str | None = None, progress: Progress = no_progress) -> None:
        if not 0.0 <= diversity_weight <= 1.0:
            raise ValueError(f"diversity_weight must be between 0 and 1 (got {diversity_weight})")
        self.config = replace(config) if config else TwoTowerConfig()
        self.diversity_weight = float(diversity_weight)
        self.pool_factor = max(1, int(pool_factor))
        self.name = name or ("two_tower" if diversity_weight == 0 else f"two_tower_mmr{diversity_weight:g}")
        self.progress = progress
        self.report: dict = {}

    def fit(self, train: Interactions) -> "TwoTowerRecommender":
        """Train on ``train``; user vectors are their whole training history as of the window's last event."""
        model, self.report = train_two_tower(train, self.config, self.progress)
        self.fitted_on = window_key(train)
        self.model = model
        self.item_vecs = model.all_item_vectors()
        seq = build_sequences(train)
        now = int(train.ts.max()) if len(train.ts) else 0
        self.user_vecs = encode_users(model, seq, np.arange(train.n_users), now)
        self.categories = S.category_keys(train.catalog)
        self._remember(train)
        return self

    def _scores(self, user_codes: np.ndarray) -> np.ndarray:
        return self.user_vecs[user_codes] @ self.item_vecs.T

    def recommend(self, user_codes: np.ndarray, k: int, *, exclude_seen: bool = False) -> Recommendations:
        """Top-k per user (see the protocol); with a diversity weight, MMR over the top ``pool_factor * k``."""
        if self.diversity_weight == 0.0:
            return super().recommend(user_codes, k, exclude_seen=exclude_seen)
        pool = super().recommend(user_codes, k * self.pool_factor, exclude_seen=exclude_seen)
        items = np.full((len(pool.items), k), -1, np.int64)
        scores = np.full((len(pool.items), k), -np.inf, np.float32)
        for r, (cand, sc) in enumerate(zip(pool.items, pool.scores)):
            ok = cand >= 0
            cand, sc = cand[ok], sc[ok]
            order = rerank_mmr(cand, sc, self.categories[cand], k, self.diversity_weight)
            items[r, :len(order)], scores[r, :len(order)] = cand[order], sc[order]
        return Recommendations(items, scores)

    def recommend_settings(self, user_codes: np.ndarray, k: int,
                           settings: tuple[bool, ...] = (False, True)) -> dict[bool, Recommendations]:
        """One scoring pass without diversity; with it, MMR re-ranks each setting's own pool."""
        if self.diversity_weight == 0.0:
            return super().recommend_settings(user_codes, k, settings)
        return {ex: self.recommend(user_codes, k, exclude_seen=ex) for ex in settings}

    def with_diversity(self, weight: float, name: str) -> "TwoTowerRecommender":
        """This fitted model with another diversity weight: a shallow copy, no refit."""
        m = copy.copy(self)
        m.diversity_weight, m.name = float(weight), name
        return m

    def similar_items(self, item_code: int, k: int) -> Recommendations:
        """Nearest items by item-tower vector (cold-start items have feature-based vectors too)."""
        return inner_product_neighbours(self.item_vecs, item_code, k)


def inner_product_neighbours(item_vecs: np.ndarray, item_code: int, k: int) -> Recommendations:
    """Top-k items by inner product with one item's vector (the item itself excluded)."""
    s = (item_vecs @ item_vecs[item_code]).astype(np.float32)[None, :]
    s[0, item_code] = -np.inf
    return top_recommendations(s, k)
