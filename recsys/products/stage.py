"""The products stage: product facts, co-view substitutes, co-purchase complements, category complements and the
search index, precomputed once under ``<root>/products/``.

:func:`build_products_stage` builds it (skipped when its inputs are unchanged); the tables' SQL is ``tables``, the
search index ``search``; ``service.ProductService`` reads it all back. :func:`model_item_embeddings` aligns the
model stage's item embeddings to the catalog, for the search index and the embedding neighbours.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import (Progress, connect, no_progress, read_manifest, require_stage, sql_literal,
                              upstream_fingerprint)
from recsys.journal import StageResult, run_stage
from recsys.ingest.adapters import load_product_names
from recsys.products.tables import (ProductParams, best_category_products, category_complements,
                                    copurchase_complements, coview_substitutes, product_cards,
                                    rules_category_complements, with_names)

log = logging.getLogger(__name__)

STAGE = "products"
CARDS, SUBSTITUTES, COMPLEMENTS, CAT_COMPLEMENTS = ("products.parquet", "substitutes.parquet",
                                                   "complements.parquet", "category_complements.parquet")
OPTIONAL_UPSTREAM = ("rules", "model")
# what model_item_embeddings may read from the model stage
MODEL_FILES = ("item_embeddings.npy", "item_ids.npy", "product_ids.npy", "items.parquet", "item_ids.parquet",
               "catalog.parquet")


def build_products(root: str | os.PathLike | None, out: Path, params: ProductParams = ProductParams(),
                   progress: Progress = no_progress) -> StageResult:
    """Compute every product table (and the search index) into ``out``."""
    spill = out / ".spill"  # DuckDB would otherwise spill into ./.tmp of the working directory
    with connect(root, memory_limit=params.memory_limit) as con:  # closed on errors too
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = {sql_literal(spill)}")
        cards, subs, comps, cats, source = _tables(con, root, out, params, progress)
    shutil.rmtree(spill, ignore_errors=True)
    progress(0.6, "search index")
    from recsys.products.search import build_search
    emb = model_item_embeddings(root, cards["product_id"].to_numpy(np.int64))
    search_report = build_search(cards, out / "search", item_embeddings=emb, seed=params.seed,
                                 progress=lambda f, m: progress(0.6 + 0.4 * f, m))
    return StageResult(rows={"products": len(cards), "substitutes": len(subs), "complements": len(comps),
                             "category_complements": len(cats)},
                       params=asdict(params),
                       extra={"category_complements_source": source, "search": search_report})


def _tables(con: duckdb.DuckDBPyConnection, root: str | os.PathLike | None, out: Path, params: ProductParams,
            progress: Progress) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """Write the cards, substitutes, complements and category complements; returns them and the latter's source."""
    progress(0.05, "product cards")
    cards = with_names(product_cards(con), load_product_names(root))
    cards.to_parquet(out / CARDS, index=False)
    progress(0.2, "co-view substitutes")
    subs = coview_substitutes(con, params)
    subs.to_parquet(out / SUBSTITUTES, index=False)
    progress(0.4, "co-purchase complements")
    comps = copurchase_complements(con, params)
    comps.to_parquet(out / COMPLEMENTS, index=False)
    progress(0.5, "category complements")
    cats = rules_category_complements(root, params.top_categories)
    source = "rules stage" if cats is not None else "products stage"
    if cats is None:
        cats = category_complements(con, params)
    cats = best_category_products(con, cats, params)
    cats.to_parquet(out / CAT_COMPLEMENTS, index=False)
    return cards, subs, comps, cats, source


def model_item_embeddings(root: str | os.PathLike | None, product_ids: np.ndarray) -> np.ndarray | None:
    """The two-tower's item embeddings aligned to ``product_ids`` (None when the model stage is absent)."""
    if read_manifest(root, "model") is None:
        return None
    d = require_stage(root, "model", files=MODEL_FILES)  # a damaged checkpoint does not spoil the embeddings
    path = d / "item_embeddings.npy"
    if not path.exists():
        return None
    emb = np.load(path)
    ids = _model_item_ids(d)
    if ids is None:
        if len(emb) != len(product_ids):
            log.warning("model item embeddings (%d) do not match the catalog (%d)", len(emb), len(product_ids))
            return None
        return emb.astype(np.float32)
    if not np.all(ids[:-1] <= ids[1:]):
        order = np.argsort(ids)
        ids, emb = ids[order], emb[order]
    pos, found = S.find_sorted(ids, product_ids)
    out = np.zeros((len(product_ids), emb.shape[1]), dtype=np.float32)
    out[found] = emb[pos[found]]
    return out


def _model_item_ids(d: Path) -> np.ndarray | None:
    """The model stage's product id per embedding row, when it stores one."""
    for name in ("item_ids.npy", "product_ids.npy"):
        if (d / name).exists():
            return np.load(d / name).astype(np.int64)
    for name in ("items.parquet", "item_ids.parquet", "catalog.parquet"):
        if (d / name).exists():
            df = pd.read_parquet(d / name)
            if S.PRODUCT_ID in df.columns:
                return df[S.PRODUCT_ID].to_numpy(np.int64)
    return None


def build_products_stage(root: str | os.PathLike | None = None, *, force: bool = False,
                         progress: Progress = no_progress,
                         params: ProductParams = ProductParams()) -> tuple[dict, bool]:
    """The products stage: skipped when the events (and the rules/model stages, if built) are unchanged."""
    ups = ["events"] + [s for s in OPTIONAL_UPSTREAM if read_manifest(root, s) is not None]
    fp = upstream_fingerprint(root, ups, [asdict(params), ups])
    return run_stage(root, STAGE, lambda tmp, prog: build_products(root, tmp, params, prog),
                     input_fingerprint=fp, seed=params.seed, force=force, progress=progress)


# ---- lookups ----------------------------------------------------------------------------------------------
