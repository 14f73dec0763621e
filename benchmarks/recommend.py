"""Latency of one ``recommend_products_for_user`` call (user tower + FAISS retrieval + MMR + labels and reasons).

Two stores: a built artifacts directory (the demo store) and a synthetic October-size catalog (170k items,
~600 categories, 3k brands, 200k users with 1-50 item histories) whose model stage is written directly (an
untrained model's feature-structured item tower; latency does not depend on the weights) and indexed by the real
``index`` stage (HNSW above 50k items, recall@10 vs exact measured there). Each call is timed on its own with
``perf_counter``; users are drawn at random (seeded). Baseline in the same run: exact numpy scoring of the whole
catalog (``vecs @ u`` + argpartition), i.e. what a call would cost without the index.

    python benchmarks/recommend.py --artifacts /tmp/demo-artifacts --calls 2000
    python benchmarks/recommend.py --artifacts /tmp/demo-artifacts --synthetic-items 170000 --calls 2000
    python benchmarks/recommend.py --artifacts /tmp/demo-artifacts /tmp/bench-recommend-synthetic  # reuse it
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys import schema as S  # noqa: E402
from recsys.artifacts import StageResult, run_stage  # noqa: E402
from recsys.recommend import load_recommender_service, recommend_products_for_user  # noqa: E402


def percentiles(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3), "calls": len(xs)}


def time_calls(root: Path, calls: int, weight: float, seed: int = 0) -> dict:
    """Per-call latency of recommend_products_for_user for random known users (after 50 warm-up calls)."""
    svc = load_recommender_service(root)
    rng = np.random.default_rng(seed)
    users = svc.user_ids[rng.integers(0, len(svc.user_ids), calls + 50)]
    times = []
    for i, u in enumerate(users):
        t0 = time.perf_counter()
        df = recommend_products_for_user(int(u), top_n=10, diversity_weight=weight, artifacts=root)
        dt = time.perf_counter() - t0
        if i >= 50:
            times.append(dt)
        assert len(df) > 0
    return {"diversity_weight": weight, **percentiles(times)}


def time_exact(root: Path, calls: int, seed: int = 0) -> dict:
    """Baseline: exact scoring of the whole catalog in numpy for one user vector (no index, no re-ranking)."""
    svc = load_recommender_service(root)
    rng = np.random.default_rng(seed)
    vecs = svc.item_vecs
    q = vecs[rng.integers(0, len(vecs), calls)]
    times = []
    for u in q:
        t0 = time.perf_counter()
        s = vecs @ u
        top = np.argpartition(-s, 50)[:50]
        top[np.argsort(-s[top])]
        times.append(time.perf_counter() - t0)
    return {"baseline": "exact numpy top-50 over the catalog", **percentiles(times)}


def synthetic_store(root: Path, n_items: int, n_users: int = 200_000, seed: int = 5) -> None:
    """Write a model stage for a synthetic October-size store, then build its index with the real stage."""
    import torch
    from recsys.twotower import store as ST
    from recsys.twotower.features import encode_items
    from recsys.twotower.index import build_index_stage
    from recsys.twotower.model import FEATURES, TwoTowerConfig, TwoTowerModel, save_checkpoint
    rng = np.random.default_rng(seed)
    cats = [f"d{d}.c{c}.s{s}" for d in range(13) for c in range(8) for s in range(6)]  # 624 category codes
    cat = rng.zipf(1.3, n_items) % len(cats)
    catalog = pd.DataFrame({
        S.PRODUCT_ID: np.sort(rng.choice(10**8, n_items, replace=False)).astype(np.int64) + 1_000_000,
        S.CATEGORY_ID: (cat + 2_053_013_552_000_000_000).astype(np.int64),
        S.CATEGORY_CODE: np.where(rng.random(n_items) < 0.3, S.UNKNOWN_CATEGORY, np.array(cats, object)[cat]),
        S.BRAND: np.array([f"brand{b}" for b in range(3000)], object)[rng.zipf(1.2, n_items) % 3000],
        S.PRICE: np.round(rng.lognormal(4, 1.2, n_items), 2), "views": 0, "carts": 0, "purchases": 0})
    torch.manual_seed(seed)
    feats = encode_items(catalog, rng.random(n_items) < 0.8)
    cfg = TwoTowerConfig(vocab=feats.sizes())
    model = TwoTowerModel(cfg)
    model.set_item_features(feats)
    lengths = rng.integers(1, cfg.history_len + 1, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    m = int(offsets[-1])
    now = 1_572_566_399
    n_buy = rng.integers(0, 4, n_users)

    def fn(tmp: Path, prog) -> StageResult:
        save_checkpoint(model, tmp / ST.CHECKPOINT)
        np.save(tmp / ST.EMBEDDINGS, model.all_item_vectors())
        np.save(tmp / ST.ITEM_IDS, catalog[S.PRODUCT_ID].to_numpy(np.int64))
        np.save(tmp / ST.USER_IDS, np.arange(n_users, dtype=np.int64) + 500_000_000)
        from recsys.twotower.features import ItemFeatures
        ItemFeatures(**{f: model.features[i].numpy() for i, f in enumerate(FEATURES)}).save(tmp / ST.FEATURES_FILE)
        catalog.to_parquet(tmp / ST.CATALOG, index=False)
        np.savez(tmp / ST.HISTORIES, offsets=offsets, item=rng.integers(0, n_items, m),
                 event=rng.choice(np.array([0, 1, 2], np.int8), m, p=[0.9, 0.07, 0.03]),
                 ts=np.sort(rng.integers(now - 30 * 86400, now, m)), session=np.zeros(m, np.int64))
        np.savez(tmp / ST.PURCHASES, offsets=np.concatenate([[0], np.cumsum(n_buy)]).astype(np.int64),
                 item=rng.integers(0, n_items, int(n_buy.sum())))
        return StageResult(rows={"items": n_items, "users": n_users}, params={"synthetic": True},
                           extra={"now_ts": now, "repurchase": {"repurchase_rate": 0.02,
                                                                "exclude_purchased_default": True}})

    run_stage(root, ST.MODEL_STAGE, fn, input_fingerprint=f"synthetic-{n_items}-{n_users}-{seed}", force=True)
    t0 = time.perf_counter()
    manifest, _ = build_index_stage(root, force=True)
    print(f"index: {manifest['index']} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, nargs="+", help="built artifacts directories (model and index stages)")
    p.add_argument("--synthetic-items", type=int, default=0, help="also measure a synthetic catalog this large")
    p.add_argument("--synthetic-root", type=Path, default=Path("/tmp/bench-recommend-synthetic"))
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.0, 1.0])
    a = p.parse_args()
    out: dict = {"results": []}
    roots = list(a.artifacts or [])
    if a.synthetic_items:
        synthetic_store(a.synthetic_root, a.synthetic_items)
        roots.append(a.synthetic_root)
    for root in roots:
        svc = load_recommender_service(root)
        res = {"artifacts": str(root), "items": len(svc.product_ids), "users": len(svc.user_ids),
               "index": svc.index_facts, "calls": [time_calls(root, a.calls, w) for w in a.weights],
               "exact_baseline": time_exact(root, a.calls)}
        out["results"].append(res)
        print(json.dumps(res), file=sys.stderr)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
