"""The ``index`` build stage: a FAISS inner-product index over the two-tower item embeddings.

Small catalogs get an exact ``IndexFlatIP``. Large ones get HNSW, with ``efSearch`` raised until recall@10
against the exact index reaches the target on held-out queries; the measured recall is written to the manifest.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from recsys.artifacts import Progress, no_progress, read_manifest, require_stage, upstream_fingerprint
from recsys.journal import StageResult, run_stage
from recsys.model.retrieval import IndexParams, build_index

STAGE = "index"
INDEX_FILE = "items.faiss"


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
