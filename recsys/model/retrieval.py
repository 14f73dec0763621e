"""The two-tower's candidates for the ranker: each user's best items through the FAISS index that serving uses.

Training, evaluation and serving all retrieve this way (an index over the item vectors the candidates are scored
with, built with the index stage's parameters: exact up to ``IndexParams.exact_max_items`` items, HNSW above), so the
ranker learns on, and is evaluated on, the pool it is served; an exact index is answered by scoring the catalog
with a fixed tie rule, the same pool the exact scan gave before HNSW was used. At the October store's 166k items
HNSW answers a user's top 100 in ~0.2 ms where the exact scan of the catalog took ~2.2 ms (a 42 MB read a call).

``IndexParams`` and ``build_index`` live here and the index stage (``recsys.index``) builds its file with them, so the
model stage never imports the index stage that reads its output.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import scipy.sparse as sp

from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.ranking import top_k

EXACT_SHARE = 8  # a user who needs more than 1/8 of the catalog searched (a long history to skip) is scanned exactly


@dataclass(frozen=True)
class IndexParams:
    """Knobs of the index stage."""
    exact_max_items: int = 50_000   # at or below: exact IndexFlatIP (single query < 2 ms at 64 d)
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search_grid: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    target_recall: float = 0.95
    eval_queries: int = 1000
    seed: int = 11


def _queries(vecs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Realistic queries: half single items (similar products), half normalised mixes of 5 items (users)."""
    n = min(n, len(vecs))
    single = vecs[rng.choice(len(vecs), n // 2 or 1, replace=False)]
    mixes = vecs[rng.integers(0, len(vecs), (n - len(single), 5))].sum(1)
    q = np.concatenate([single, mixes]).astype(np.float32)
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def recall_vs_exact(index: faiss.Index, vecs: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-k that ``index`` returns for ``queries``."""
    exact = faiss.IndexFlatIP(vecs.shape[1])
    exact.add(vecs)
    _, truth = exact.search(queries, k)
    _, got = index.search(queries, k)
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(truth, got)]))


def build_index(vecs: np.ndarray, params: IndexParams = IndexParams(),
                progress: Progress = no_progress) -> tuple[faiss.Index, dict[str, Any]]:
    """An index over unit vectors (I, d) and its measured facts (kind, efSearch, recall@10, build seconds)."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    t0 = time.perf_counter()
    if len(vecs) <= params.exact_max_items:
        index = faiss.IndexFlatIP(vecs.shape[1])
        index.add(vecs)
        return index, {"kind": "flat_ip", "recall@10": 1.0, "ef_search": None,
                       "build_seconds": round(time.perf_counter() - t0, 3)}
    index = faiss.IndexHNSWFlat(vecs.shape[1], params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    progress(0.1, f"HNSW over {len(vecs):,} items")
    index.add(vecs)
    queries = _queries(vecs, params.eval_queries, np.random.default_rng(params.seed))
    recall, ef = 0.0, params.ef_search_grid[-1]
    for ef in params.ef_search_grid:
        index.hnsw.efSearch = ef
        recall = recall_vs_exact(index, vecs, queries)
        progress(0.8, f"efSearch {ef}: recall@10 {recall:.3f}")
        if recall >= params.target_recall:
            break
    return index, {"kind": "hnsw_ip", "recall@10": round(recall, 4), "ef_search": ef, "hnsw_m": params.hnsw_m,
                   "build_seconds": round(time.perf_counter() - t0, 3)}


def retrieval_index(item_vecs: np.ndarray, params: IndexParams = IndexParams()) -> faiss.Index:
    """The index the index stage would build over ``item_vecs`` (same parameters, same measured efSearch)."""
    return build_index(item_vecs, params)[0]


def retrieve(index: faiss.Index, item_vecs: np.ndarray, queries: np.ndarray, k: int,
             seen: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) pairs: each query row's ``k`` best items by inner product, best first within a row.

    With ``seen`` (a CSR matrix, one row per query, nonzero = touched) the touched items are skipped and the row
    still gets its ``k`` best unseen items. An exact index (``IndexFlat``) is answered by scoring the catalog here,
    ties to the lower item code, so the pool does not hang on FAISS's heap order among equal scores (cold items
    share one vector). An HNSW index is searched ``k`` + touched deep (rounded up to a power of two so that a
    batch is a few searches), or the row is scored exactly when that depth would be a large share of the
    catalog. Rows are grouped by depth, so a result depends on the row alone, not its batch."""
    n, q = len(item_vecs), np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, n)
    if isinstance(index, faiss.IndexFlat):
        return _exact(item_vecs, q, k, seen, np.arange(len(q)))
    if seen is None:
        depth = np.full(len(q), k)
    else:
        need = k + np.diff(seen.indptr)
        depth = np.minimum(n, 2 ** np.ceil(np.log2(np.maximum(need, 1))).astype(np.int64))
    rows_out, items_out = [], []
    for d in np.unique(depth):
        rows = np.flatnonzero(depth == d)
        if d * EXACT_SHARE > n and seen is not None:
            r, g = _exact(item_vecs, q[rows], k, seen[rows], rows)
            rows_out.append(r), items_out.append(g)
            continue
        _, got = index.search(q[rows], int(d))
        r, g = np.repeat(rows, got.shape[1]), got.ravel().astype(np.int64)
        ok = g >= 0  # HNSW pads with -1 when it finds fewer than asked
        if seen is not None:
            ok &= ~_touched(seen, r, g)
        r, g = r[ok], g[ok]
        first = (np.arange(len(r)) - np.searchsorted(r, r, "left")) < k
        rows_out.append(r[first]), items_out.append(g[first])
    r, g = np.concatenate(rows_out), np.concatenate(items_out)
    order = np.argsort(r, kind="stable")
    return r[order], g[order]


def _exact(item_vecs: np.ndarray, q: np.ndarray, k: int, seen: sp.csr_matrix | None,
           rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``retrieve`` by scoring the whole catalog: (rows[j], item) pairs, best first, ties to the lower item."""
    scores = q @ item_vecs.T
    if seen is not None:
        seen = seen.tocsr()
        nz = seen.data != 0
        scores[np.repeat(np.arange(len(q)), np.diff(seen.indptr))[nz], seen.indices[nz]] = -np.inf
    top, _ = top_k(scores, k)  # best first; equal scores: lower item first
    ok = top >= 0
    return np.repeat(rows, top.shape[1])[ok.ravel()], top[ok]


def _touched(seen: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether seen[rows, cols] is stored and nonzero, by a sorted-key lookup (no sparse fancy indexing)."""
    seen = seen.tocsr()
    seen.sort_indices()
    keys = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr)) * seen.shape[1] + seen.indices
    keys = keys[seen.data != 0]
    q = rows.astype(np.int64) * seen.shape[1] + cols
    return S.find_sorted(keys, q)[1]
