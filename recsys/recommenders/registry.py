"""Every recommender by name: a factory per model, so evaluation, tests and pages loop over one table.

The two-tower entries appear only when ``recsys.model.two_tower`` can be imported (it needs torch and
the two-tower package); :data:`UNAVAILABLE` then says why they are missing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from recsys.recommenders.base import Recommender
from recsys.recommenders.ease import EASERecommender
from recsys.recommenders.itemknn import ItemKNNRecommender
from recsys.recommenders.mf import ALSRecommender, SVDRecommender
from recsys.recommenders.mf_mse import MFMSERecommender
from recsys.recommenders.ncf import NCFRecommender
from recsys.recommenders.popular import PopularRecommender
from recsys.recommenders.recent import RecentRecommender
from recsys.recommenders.userknn import UserKNNRecommender

log = logging.getLogger(__name__)

Factory = Callable[..., Recommender]

# the two-tower with diversity re-ranking uses this weight in the model table (the curve sweeps 0..1)
DEFAULT_DIVERSITY_WEIGHT = 0.3

REGISTRY: dict[str, Factory] = {
    "popular": PopularRecommender,
    "recently_viewed": lambda **kw: RecentRecommender("viewed", **kw),
    "recently_bought": lambda **kw: RecentRecommender("bought", **kw),
    "item_knn": ItemKNNRecommender,
    "ease": EASERecommender,
    "user_knn": UserKNNRecommender,
    "svd": SVDRecommender,
    "als": ALSRecommender,
    "mf_mse": MFMSERecommender,
    "ncf": NCFRecommender,
}

LABELS: dict[str, str] = {
    "popular": "Most popular", "recently_viewed": "Recently viewed (own items)",
    "recently_bought": "Recently bought (own items)", "item_knn": "Item-item CF (cosine)",
    "ease": "EASE (closed-form item-item)",
    "user_knn": "User-user CF (10 neighbours)", "svd": "Truncated SVD", "als": "Implicit ALS",
    "mf_mse": "MF on quantity (MSE)", "ncf": "NCF (MLP, BCE)", "two_tower": "Two-tower",
    "two_tower_mmr": f"Two-tower + MMR diversity (w={DEFAULT_DIVERSITY_WEIGHT})",
    "two_tower_ranker": "Two-tower + ranker (served)",
}

UNAVAILABLE: dict[str, str] = {}

# Models that reuse another model's fit on the same window (evaluated after it, never trained twice):
# name -> (the model it reuses, how to get this one from that fitted model and the training window)
REUSES: dict[str, tuple[str, Callable[..., Recommender]]] = {}
# Models that take the two-tower's training budget (``config``) and report training progress (``progress``).
TWO_TOWER_FAMILY = frozenset({"two_tower", "two_tower_mmr", "two_tower_ranker"})

try:
    from recsys.model.two_tower import TwoTowerRecommender

    def _two_tower(**kw: Any) -> Recommender:
        return TwoTowerRecommender(name="two_tower", **kw)

    def _two_tower_mmr(**kw: Any) -> Recommender:
        kw.setdefault("diversity_weight", DEFAULT_DIVERSITY_WEIGHT)
        return TwoTowerRecommender(name="two_tower_mmr", **kw)

    REGISTRY["two_tower"] = _two_tower
    REGISTRY["two_tower_mmr"] = _two_tower_mmr
    # the MMR variant re-ranks the two-tower's own lists
    REUSES["two_tower_mmr"] = ("two_tower", lambda up, train, **kw: up.with_diversity(DEFAULT_DIVERSITY_WEIGHT,
                                                                                        "two_tower_mmr"))
    try:
        from recsys.model.ranker import RankerRecommender
        REGISTRY["two_tower_ranker"] = RankerRecommender
        # the served ranker retrieves with that same two-tower
        REUSES["two_tower_ranker"] = ("two_tower", lambda up, train, **kw: make("two_tower_ranker", retriever=up,
                                                                               **kw).fit(train))
    except ImportError as exc:  # lightgbm missing
        UNAVAILABLE["two_tower_ranker"] = f"the ranker cannot be imported ({exc})"
except ImportError as exc:  # the two-tower package is optional for the baselines
    UNAVAILABLE["two_tower"] = UNAVAILABLE["two_tower_mmr"] = f"the two-tower model cannot be imported ({exc})"
    log.warning("two-tower recommenders unavailable: %s", exc)


def names() -> list[str]:
    """Registered model names, baselines first."""
    return list(REGISTRY)


def make(name: str, **kwargs: Any) -> Recommender:
    """A new, unfitted recommender by name; KeyError listing the known names otherwise."""
    if name not in REGISTRY:
        why = f" ({UNAVAILABLE[name]})" if name in UNAVAILABLE else ""
        raise KeyError(f"unknown recommender {name!r}{why}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name](**kwargs)


def upstream(name: str) -> str | None:
    """The model whose fit ``name`` reuses (see :data:`REUSES`), else None."""
    return REUSES[name][0] if name in REUSES else None


def fit(name: str, train: Any, upstream_model: Recommender | None = None, **kwargs: Any) -> Recommender:
    """A recommender by name fitted on ``train``. ``upstream_model``: the fitted ``upstream(name)`` model, reused
    instead of training it again (None: fit from scratch)."""
    if upstream_model is not None and name in REUSES:
        return REUSES[name][1](upstream_model, train, **kwargs)
    return make(name, **kwargs).fit(train)


def label(name: str) -> str:
    """A human-readable model name."""
    return LABELS.get(name, name)
