"""Files of the ``model`` stage and what serving needs from them, plus the store's repurchase behaviour.

Layout of ``<artifacts>/model/``:
- ``model.pt``            checkpoint: ``{"state_dict", "config"}`` (``torch.load(weights_only=True)``)
- ``config.json``         the TwoTowerConfig and the training report
- ``item_embeddings.npy`` (I, dim) float32 unit vectors, row i = ``item_ids[i]`` (the catalog order)
- ``item_ids.npy``        (I,) int64 product ids; ``user_ids.npy`` (U,) int64 user ids (both sorted)
- ``item_features.npz``   the item tower's feature codes (the user tower embeds history items with them)
- ``catalog.parquet``     product_id, category_id, category_code, brand, price, views, carts, purchases
- ``histories/``          each user's last ``history_len`` merged events (CSR: offsets, item, event, ts, session)
- ``purchases/``          each user's distinct purchased item codes (CSR: offsets, item)

The two CSR folders hold one ``.npy`` per array (``recsys.artifacts.save_arrays``), memory-mapped when loaded;
a build from before that wrote them as ``histories.npz`` / ``purchases.npz``, still read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.artifacts import load_arrays, read_manifest, require_stage
from recsys.ingest.interactions import Interactions
from recsys.model.features import PURCHASE_I, ItemFeatures, Sequences

MODEL_STAGE = "model"
CHECKPOINT, CONFIG, EMBEDDINGS = "model.pt", "config.json", "item_embeddings.npy"
ITEM_IDS, USER_IDS, FEATURES_FILE = "item_ids.npy", "user_ids.npy", "item_features.npz"
CATALOG, HISTORIES, PURCHASES = "catalog.parquet", "histories", "purchases"  # the last two: folders of .npy
RANKER_DIR = "ranker"  # the served two-tower + ranker (absent when the store was too small to train one)
REPURCHASE_EXCLUDE_BELOW = 0.10  # exclude purchased items by default when fewer repeat purchases than this


def item_embeddings_path(root: str | os.PathLike | None) -> Path:
    """Path of the built item embeddings (ArtifactError when the model stage is missing)."""
    return require_stage(root, MODEL_STAGE) / EMBEDDINGS


def repurchase_stats(inter: Interactions) -> dict[str, Any]:
    """Share of purchases that repeat the same user's purchase of the same item in an earlier session."""
    p = inter.event == PURCHASE_I
    user, item, sess, ts = inter.user[p], inter.item[p], inter.session[p], inter.ts[p]
    order = np.lexsort((ts, item, user))
    user, item, sess = user[order], item[order], sess[order]
    same_pair = np.zeros(len(user), bool)
    same_pair[1:] = (user[1:] == user[:-1]) & (item[1:] == item[:-1])
    # a repeat = same (user, item) as an earlier purchase, in a session not seen for that pair yet
    first_in_session = np.ones(len(user), bool)
    first_in_session[1:] = ~same_pair[1:] | (sess[1:] != sess[:-1])
    repeats = int((same_pair & first_in_session).sum())
    rate = repeats / len(user) if len(user) else 0.0
    return {"purchases": int(len(user)), "repeat_purchases": repeats, "repurchase_rate": round(rate, 4),
            "exclude_purchased_default": bool(rate < REPURCHASE_EXCLUDE_BELOW),
            "exclude_below": REPURCHASE_EXCLUDE_BELOW}


def purchases_csr(inter: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """Each user's distinct purchased item codes: (offsets (U+1,), items)."""
    p = inter.event == PURCHASE_I
    pairs = np.unique(np.stack([inter.user[p].astype(np.int64), inter.item[p].astype(np.int64)], 1), axis=0) \
        if p.any() else np.zeros((0, 2), np.int64)
    counts = np.bincount(pairs[:, 0], minlength=inter.n_users)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), pairs[:, 1].copy()


@dataclass
class ModelArtifacts:
    """Everything serving reads from the model stage, as arrays (labels indexed by item code: O(k) lookups)."""
    directory: Path
    manifest: dict[str, Any]
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_vecs: np.ndarray
    features: ItemFeatures
    catalog: pd.DataFrame
    histories: Sequences
    purchase_offsets: np.ndarray
    purchase_items: np.ndarray

    @classmethod
    def load(cls, root: str | os.PathLike | None) -> "ModelArtifacts":
        d = require_stage(root, MODEL_STAGE)
        h, p = (load_arrays(d / n, legacy_npz=d / f"{n}.npz") for n in (HISTORIES, PURCHASES))
        hist = Sequences(h["offsets"], h["item"], h["event"], h["ts"], h["session"])
        po, pi = p["offsets"], p["item"]
        return cls(d, read_manifest(root, MODEL_STAGE) or {}, np.load(d / ITEM_IDS), np.load(d / USER_IDS),
                   np.load(d / EMBEDDINGS), ItemFeatures.load(d / FEATURES_FILE), pd.read_parquet(d / CATALOG),
                   hist, po, pi)

