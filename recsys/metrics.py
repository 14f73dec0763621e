"""Ranking metrics per user, and bootstrap confidence intervals over users.

Every metric takes ``recs`` (n_users, K) item codes, best first, with -1 padding, and returns one value per
user (so it can be averaged and bootstrapped), except catalog coverage, which is a property of the whole set.
Targets are one set of item codes per user, given as a list of iterables or a CSR matrix (n_users, n_items).

Definitions (binary relevance):
- Recall@K = hits in the top K / number of targets;
- NDCG@K = sum over hits of 1/log2(rank + 1), divided by the same sum for an ideal list with min(K, targets) hits;
- HitRate@K = 1 if any target is in the top K;
- MRR@K = 1 / rank of the first target in the top K (0 when none);
- catalog coverage@K = share of catalog items that appear in at least one user's top K;
- intra-list diversity@K = share of pairs of recommended items whose categories differ;
- novelty@K = mean self-information -log2 p(i) of the recommended items, p(i) = share of users who know item i.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

Targets = sp.csr_matrix | Sequence[Iterable[int]]


def as_target_matrix(targets: Targets, n_items: int | None = None) -> sp.csr_matrix:
    """Targets as a boolean CSR matrix (n_users, n_items)."""
    if sp.issparse(targets):
        m = sp.csr_matrix(targets, dtype=bool)
        if n_items is not None and m.shape[1] < n_items:
            m.resize((m.shape[0], n_items))
        return m
    rows, cols = [], []
    for u, items in enumerate(targets):
        items = sorted(set(int(i) for i in items))
        rows.extend([u] * len(items))
        cols.extend(items)
    width = max(n_items or 0, (max(cols) + 1) if cols else 0)
    data = np.ones(len(rows), dtype=bool)
    return sp.csr_matrix((data, (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
                         shape=(len(targets), width))


def hits(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """(n_users, k) boolean: is the item at each rank a target of that user (padding never is)."""
    recs = np.asarray(recs)[:, :k]
    t = as_target_matrix(targets, int(recs.max(initial=-1)) + 1)
    if recs.shape[0] != t.shape[0]:
        raise ValueError(f"recs has {recs.shape[0]} users but targets has {t.shape[0]}")
    valid = recs >= 0
    rows = np.repeat(np.arange(recs.shape[0]), recs.shape[1]).reshape(recs.shape)
    out = np.zeros(recs.shape, dtype=bool)
    if valid.any():
        out[valid] = np.asarray(t[rows[valid], recs[valid]]).ravel()
    return out


def _n_targets(targets: Targets, n_users: int) -> np.ndarray:
    if sp.issparse(targets):
        return np.diff(sp.csr_matrix(targets).indptr).astype(np.float64)
    return np.array([len(set(t)) for t in targets], dtype=np.float64)


def recall_at_k(recs: np.ndarray, targets: Targets, k: int, *, capped: bool = False) -> np.ndarray:
    """Per user: hits in the top k / number of targets (0 for users without targets); ``capped`` divides by
    min(k, targets) instead, so a perfect list scores 1 whatever the number of targets (training's validation)."""
    n = _n_targets(targets, len(recs))
    return recall_from_hits(hits(recs, targets, k), np.minimum(n, k) if capped else n, k)


def ndcg_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Per user: DCG of the top k over the DCG of an ideal list (binary relevance)."""
    return ndcg_from_hits(hits(recs, targets, k), _n_targets(targets, len(recs)), k)


def hit_rate_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Per user: 1.0 if any target is in the top k, else 0.0."""
    return hit_rate_from_hits(hits(recs, targets, k), k)


def mrr_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Per user: 1 / rank of the first target in the top k, 0 when there is none."""
    return mrr_from_hits(hits(recs, targets, k), k)


# the same metrics from a precomputed (n_users, >= k) hit matrix, so an evaluation looks targets up once

def recall_from_hits(h: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Recall@k from hits and per-user target counts."""
    got = h[:, :k].sum(1)
    return np.divide(got, n_targets, out=np.zeros(len(got)), where=n_targets > 0)


def ndcg_from_hits(h: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k from hits and per-user target counts."""
    h = h[:, :k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * disc[:h.shape[1]]).sum(1)
    n = np.minimum(n_targets, k).astype(int)
    idcg = np.concatenate([[0.0], np.cumsum(disc)])[n]
    return np.divide(dcg, idcg, out=np.zeros(len(dcg)), where=idcg > 0)


def hit_rate_from_hits(h: np.ndarray, k: int) -> np.ndarray:
    """HitRate@k from hits."""
    return h[:, :k].any(1).astype(np.float64)


def mrr_from_hits(h: np.ndarray, k: int) -> np.ndarray:
    """MRR@k from hits."""
    h = h[:, :k]
    return np.where(h.any(1), 1.0 / (h.argmax(1) + 1), 0.0)


def n_targets(targets: Targets) -> np.ndarray:
    """Number of distinct targets per user."""
    return _n_targets(targets, 0)


def mrr(recs: np.ndarray, targets: Targets) -> np.ndarray:
    """Per user: reciprocal rank of the first target anywhere in the list."""
    return mrr_at_k(recs, targets, np.asarray(recs).shape[1])


def catalog_coverage(recs: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalog's ``n_items`` that appear in at least one user's top k."""
    top = np.asarray(recs)[:, :k]
    top = top[top >= 0]
    return float(len(np.unique(top)) / n_items) if n_items else 0.0


def intra_list_diversity(recs: np.ndarray, item_category: np.ndarray, k: int) -> np.ndarray:
    """Per user: share of pairs among the top k whose categories differ (NaN for lists under 2 items)."""
    top = np.asarray(recs)[:, :k]
    valid = top >= 0
    cats = np.where(valid, np.asarray(item_category)[np.maximum(top, 0)], -1)
    pair = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((top.shape[1],) * 2, bool), 1)[None]
    same = ((cats[:, :, None] == cats[:, None, :]) & pair).sum((1, 2))
    n_pairs = pair.sum((1, 2))
    return np.divide(n_pairs - same, n_pairs, out=np.full(len(top), np.nan), where=n_pairs > 0)


def novelty_at_k(recs: np.ndarray, item_popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user: mean -log2 p(i) over the top k, where ``item_popularity`` holds p(i) in (0, 1]."""
    top = np.asarray(recs)[:, :k]
    valid = top >= 0
    p = np.asarray(item_popularity, dtype=np.float64)[np.maximum(top, 0)]
    info = np.where(valid, -np.log2(np.clip(p, 1e-12, 1.0)), 0.0)
    n = valid.sum(1)
    return np.divide(info.sum(1), n, out=np.full(len(top), np.nan), where=n > 0)


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 200, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-user values with a percentile bootstrap CI over users (NaNs ignored)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(v.mean()), float(lo), float(hi)


def coverage_ci(recs: np.ndarray, n_items: int, k: int, *, n_boot: int = 200, alpha: float = 0.05,
                seed: int = 0) -> tuple[float, float, float]:
    """Catalog coverage@k with a bootstrap CI over users (resampled users' lists, one sparse product)."""
    top = np.asarray(recs)[:, :k]
    n = len(top)
    value = catalog_coverage(top, n_items, k)
    if n == 0 or n_items == 0:
        return value, float("nan"), float("nan")
    rows, cols = np.nonzero(top >= 0)
    r = sp.csr_matrix((np.ones(len(rows)), (rows, top[rows, cols])), shape=(n, n_items))
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_boot)])
    covered = (sp.csr_matrix(counts.astype(np.float64)) @ r) > 0
    stats = np.asarray(covered.sum(1)).ravel() / n_items
    # a resample repeats some users and misses others, so its coverage is biased low: the interval keeps the
    # bootstrap spread but is centred on the observed value
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2]) - stats.mean() + value
    return value, float(max(lo, 0.0)), float(min(hi, 1.0))
