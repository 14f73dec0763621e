"""Category-aware diversity: MMR re-ranking of a candidate pool and list-level diversity metrics.

``rerank_mmr`` picks items greedily by ``(1 - w) * relevance - w * redundancy``, where relevance is the
candidate's score min-max scaled over the pool and redundancy is the share of already-picked items in the same
category. ``w = 0`` returns the pure relevance order; ``w = 1`` always prefers a category not shown yet (ties by
relevance), so the list spans as many categories as the pool allows; values in between trade off smoothly.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_TIE = 1e-6  # at weight 1, relevance still breaks ties between equally redundant candidates


def _category_codes(categories: Sequence | np.ndarray) -> np.ndarray:
    """Integer codes of category labels (any hashable values; missing values form one category)."""
    arr = np.asarray(categories)
    if arr.dtype.kind in "iu":  # already integer keys (the serving path): no pandas round trip
        return np.unique(arr, return_inverse=True)[1].astype(np.int64).ravel() if len(arr) else arr.astype(np.int64)
    codes, _ = pd.factorize(pd.Series(np.asarray(categories, dtype=object)).fillna("<missing>"))
    return codes.astype(np.int64)


def rerank_mmr(candidates: Sequence | np.ndarray, scores: Sequence | np.ndarray, categories: Sequence | np.ndarray,
               k: int, diversity_weight: float) -> np.ndarray:
    """Positions into ``candidates`` of the re-ranked top-k (best first)."""
    n = len(candidates)
    if len(scores) != n or len(categories) != n:
        raise ValueError(f"candidates, scores and categories must have the same length "
                         f"(got {n}, {len(scores)}, {len(categories)})")
    if not 0.0 <= float(diversity_weight) <= 1.0:
        raise ValueError(f"diversity_weight must be between 0 and 1 (got {diversity_weight})")
    if k < 0:
        raise ValueError(f"k must be >= 0 (got {k})")
    k = min(int(k), n)
    s = np.asarray(scores, dtype=np.float64)
    relevance_order = np.argsort(-s, kind="stable")
    if diversity_weight == 0.0 or k == 0:
        return relevance_order[:k]
    span = s.max() - s.min()
    rel = (s - s.min()) / span if span > 0 else np.ones(n)
    cat = _category_codes(categories)
    counts = np.zeros(cat.max() + 1, np.float64)
    w = float(diversity_weight)
    base = (1.0 - w) * rel + _TIE * rel
    available = np.ones(n, bool)
    picked = []
    for step in range(k):
        redundancy = counts[cat] / step if step else np.zeros(n)
        gain = np.where(available, base - w * redundancy, -np.inf)
        best = int(np.argmax(gain))  # first maximum = the better-scored candidate among exact ties of equal score
        picked.append(best)
        available[best] = False
        counts[cat[best]] += 1
    return np.asarray(picked, dtype=np.int64)


def intra_list_diversity(categories: Sequence | np.ndarray) -> float:
    """Share of item pairs in one list from different categories (0 = one category, 1 = all distinct): the
    evaluation's :func:`recsys.metrics.intra_list_diversity` of this list, 0 for lists under 2 items."""
    cat = _category_codes(categories)
    n = len(cat)
    if n < 2:
        return 0.0
    same = np.bincount(cat).astype(np.int64)  # pairs within one category, counted per category: O(n), no n x n
    return float((n * (n - 1) // 2 - int((same * (same - 1) // 2).sum())) / (n * (n - 1) // 2))


def category_coverage(categories: Sequence | np.ndarray, universe: Sequence | np.ndarray | None = None) -> float:
    """Distinct categories in the list over distinct categories in ``universe`` (e.g. the candidate pool).

    Without a universe, the list's number of distinct categories over its length (1 = every item differs).
    """
    shown = _label_set(categories)
    if universe is None:
        return len(shown) / len(categories) if len(categories) else 0.0
    pool = _label_set(universe)
    return len(shown & pool) / len(pool) if pool else 0.0


def _label_set(categories: Sequence | np.ndarray) -> set:
    arr = np.asarray(categories)
    if arr.dtype.kind in "iu":
        return set(arr.tolist())
    return set(pd.Series(np.asarray(categories, dtype=object)).fillna("<missing>"))
