"""The ``index`` build stage: a FAISS inner-product index over the two-tower item embeddings.

Small catalogs get an exact ``IndexFlatIP``. Large ones get HNSW, with ``efSearch`` raised until recall@10
against the exact index reaches the target on held-out queries; the measured recall is written to the manifest.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from recsys.artifacts import (Progress, StageResult, no_progress, read_manifest, require_stage, run_stage,
                              upstream_fingerprint)

STAGE = "index"
INDEX_FILE = "items.faiss"


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


def load_index(root: str | os.PathLike | None) -> faiss.Index:
    """The built index, with the stage's measured efSearch applied."""
    d = require_stage(root, STAGE)
    index = faiss.read_index(str(d / INDEX_FILE))
    ef = (read_manifest(root, STAGE) or {}).get("index", {}).get("ef_search")
    if ef:
        faiss.downcast_index(index).hnsw.efSearch = int(ef)
    return index


def build_index_stage(root: str | os.PathLike | None, *, force: bool = False, progress: Progress = no_progress,
                      params: IndexParams = IndexParams()) -> tuple[dict, bool]:
    """Build the FAISS index over ``model/item_embeddings.npy`` (skipped when up to date)."""
    from recsys.model.store import MODEL_STAGE, item_embeddings_path
    require_stage(root, MODEL_STAGE)
    fp = upstream_fingerprint(root, [MODEL_STAGE], asdict(params))

    def fn(tmp: Path, prog: Progress) -> StageResult:
        vecs = np.load(item_embeddings_path(root))
        index, facts = build_index(vecs, params, prog)
        faiss.write_index(index, str(tmp / INDEX_FILE))
        facts.update(n_items=int(len(vecs)), dim=int(vecs.shape[1]))
        return StageResult(rows={"items": int(len(vecs))}, params=asdict(params), extra={"index": facts})

    return run_stage(root, STAGE, fn, input_fingerprint=fp, seed=params.seed, force=force, progress=progress)
