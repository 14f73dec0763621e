"""The model stage: the two-tower (``recsys.model.train``) and the served ranker over it (``recsys.model.ranker``),
trained on the cleaned events and written to ``<root>/model/``; read back by ``recsys.model.store.ModelArtifacts``
(and served by ``recsys.serving``)."""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from recsys.artifacts import (EVENTS_STAGE, Progress, connect, no_progress, save_arrays, upstream_fingerprint,
                              write_json)
from recsys.journal import StageResult, run_stage
from recsys.ingest.interactions import Interactions, load_interactions
from recsys.model import store as ST
from recsys.model.profiles import EXAMPLES_FILE, find_telling_users
from recsys.model.features import ItemFeatures, build_sequences
from recsys.model.ranker import RankerRecommender
from recsys.model.ranker_state import RankerConfig
from recsys.model.towers import FEATURES, TwoTowerConfig, TwoTowerModel, save_checkpoint
from recsys.model.train import holdout_report, train_two_tower
from recsys.model.two_tower import window_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelParams:
    """Knobs of the ``model`` stage. The deployed model learns from every event (``holdout_days=0``): stored
    recommendations are for today. Offline evaluation refits ``TwoTowerRecommender`` on its own split."""
    holdout_days: float = field(default_factory=lambda: float(os.environ.get("RECSYS_MODEL_HOLDOUT_DAYS", 0)))
    config: TwoTowerConfig = field(default_factory=TwoTowerConfig)


def _fit_ranker(train: Interactions, model: TwoTowerModel, report: dict, config: TwoTowerConfig, out: Path,
                progress: Progress) -> dict[str, Any]:
    """The served ranker over this two-tower (see ``recsys.model.ranker``), stored under ``out``; a store
    too small to train it serves the two-tower alone (the report says why)."""
    retriever = SimpleNamespace(model=model, report=report, fitted_on=window_key(train), config=config)
    try:
        ranker = RankerRecommender(config=config, retriever=retriever, progress=progress).fit(train)
    except ValueError as exc:
        log.warning("model stage: no ranker: %s", exc)
        return {"built": False, "why": str(exc)}
    ranker.save(out)
    return {"built": True, **ranker.report.get("ranker", {}), "validation": ranker.report.get("validation")}


def build_model_stage(root: str | os.PathLike | None, *, force: bool = False, progress: Progress = no_progress,
                      params: ModelParams | None = None) -> tuple[dict, bool]:
    """Train the two-tower model on the cleaned events and write ``<root>/model/`` (skipped when up to date)."""
    params = params or ModelParams()
    p_dict = {"holdout_days": params.holdout_days, "config": params.config.to_dict(), "ranker": asdict(RankerConfig())}
    fp = upstream_fingerprint(root, [EVENTS_STAGE], p_dict)

    def fn(tmp: Path, prog: Progress) -> StageResult:
        prog(0.0, "model: loading interactions")
        inter = load_interactions(root)
        if len(inter.ts) == 0:
            raise ValueError("the events stage is empty: there is nothing to train the two-tower model on")
        now = int(inter.ts.max())
        train = inter.window(end=now + 1 - int(params.holdout_days * 86400)) if params.holdout_days else inter
        model, report = train_two_tower(train, params.config, lambda f, m: prog(0.02 + 0.93 * f, f"model: {m}"))
        prog(0.96, "model: writing embeddings and histories")
        save_checkpoint(model, tmp / ST.CHECKPOINT)
        write_json(tmp / ST.CONFIG, {"config": model.config.to_dict(), "report": report})
        vecs = model.all_item_vectors()
        np.save(tmp / ST.EMBEDDINGS, vecs)
        np.save(tmp / ST.ITEM_IDS, inter.item_ids)
        np.save(tmp / ST.USER_IDS, inter.user_ids)
        feats = ItemFeatures(**{f: model.features[i].numpy() for i, f in enumerate(FEATURES)})
        feats.save(tmp / ST.FEATURES_FILE)
        inter.catalog.to_parquet(tmp / ST.CATALOG, index=False)
        hist = build_sequences(train).truncate(model.config.history_len)
        save_arrays(tmp / ST.HISTORIES, {"offsets": hist.offsets, "item": hist.item, "event": hist.event,
                                         "ts": hist.ts, "session": hist.session})
        offsets, items = ST.purchases_csr(train)
        save_arrays(tmp / ST.PURCHASES, {"offsets": offsets, "item": items})
        repurchase = ST.repurchase_stats(inter)
        n_hist = int(len(hist.item))
        del hist, vecs, offsets, items  # written; the ranker builds its own state
        ranker_report = _fit_ranker(train, model, report, params.config, tmp / ST.RANKER_DIR,
                                    lambda f, m: prog(0.96 + 0.02 * f, f"model: ranker: {m}"))
        prog(0.98, "model: example users")
        with connect(root) as con:
            write_json(tmp / EXAMPLES_FILE, find_telling_users(con))
        holdout = holdout_report(model, inter, now + 1 - int(params.holdout_days * 86400)) \
            if params.holdout_days else None
        return StageResult(
            rows={"items": inter.n_items, "users": inter.n_users, "train_events": int(len(train.ts)),
                  "history_rows": n_hist},
            params=p_dict,
            extra={"train": report, "ranker": ranker_report, "holdout": holdout, "repurchase": repurchase, "now_ts": now,
                   "train_end_ts": int(train.ts.max()) if len(train.ts) else now,
                   "dim": model.config.dim, "history_len": model.config.history_len})

    return run_stage(root, ST.MODEL_STAGE, fn, input_fingerprint=fp, seed=params.config.seed, force=force,
                     progress=progress)
