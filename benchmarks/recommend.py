"""Latency of one served ``recommend_products_for_user`` call (two-tower + LightGBM ranker + reasons + MMR).

Stores: built artifacts directories (e.g. the demo store) and a synthetic October-size store (170k items, ~600
categories, 3k brands, 200k users with 1-50 item histories over 30 days). The synthetic model stage is written
directly: an untrained two-tower (its feature-structured item tower; latency does not depend on the weights),
histories and purchases derived from synthetic interactions (users x items, view / cart / purchase events in
sessions, `synthetic_interactions`), and a stored ranker whose serving state is built from those interactions by
``RankerRecommender.fit`` with the synthetic model as both its inner and its serving two-tower (no two-tower is
trained). Latency depends on the number and depth of the trees, not on what they learnt, and synthetic events
teach little: a fitted ranker is dropped (it does not beat the two-tower's order) or stops early (18 and 15
trees at 170k items). Every such booster is then replaced by a LightGBM ranker trained on the synthetic feature
rows (1,000 users' candidates) with seeded random graded labels, the full ``RankerConfig().n_estimators`` trees,
``num_leaves`` as configured and no early stopping: the worst case for latency (the output and the model
manifest say which boosters were replaced, with their tree and leaf counts). The index stage is the real one
(HNSW above 50k items). The synthetic store is cached under ``--synthetic-root`` and rebuilt only when its
settings change (170k items: 4.5 min on a shared 2-core box, model stage 190 s, index 73 s).

Per store and run: random known users (seeded, 50 warm-up calls), each call timed on its own with
``perf_counter``; the served call (``recommend_products_for_user(user, top_n=10, diversity_weight=0.3)``) and, in
the same run and interleaved user by user, the two-tower-only baseline (``RecommenderService.two_tower_for_user``:
user tower, FAISS retrieval, its own order and reasons, no ranker); percentiles are medians over ``--runs`` runs,
of wall time and (``*_cpu``) of the calling thread's CPU time, the steadier figure on a shared box. Once per store, the served
call is split into parts by timing the real call's steps: candidates + features, LightGBM predict (ranking),
reasons (with their occlusion predict), MMR, and the rest (frame, lookups).

    python benchmarks/recommend.py --artifacts /tmp/demo-artifacts --synthetic-items 170000   # builds or reuses it
    python benchmarks/recommend.py --synthetic-items 170000 --runs 5 --calls 1000
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys import schema as S  # noqa: E402
from recsys.artifacts import save_arrays  # noqa: E402
from recsys.journal import StageResult, run_stage  # noqa: E402
from recsys.ingest.interactions import Interactions  # noqa: E402
from recsys.serving.service import load_recommender_service, recommend_products_for_user  # noqa: E402

VIEW_I, CART_I, PURCHASE_I = (S.EVENT_TYPES.index(e) for e in (S.VIEW, S.CART, S.PURCHASE))
SYNTHETIC_VERSION = 2  # part of the synthetic store's fingerprint: bump when the generator changes


def percentiles(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3), "calls": len(xs)}


def median_of(runs: list[dict]) -> dict[str, float]:
    """Per key, the median over runs of that percentile."""
    return {k: round(float(np.median([r[k] for r in runs])), 3) for k in runs[0]}


# ---- the synthetic store ------------------------------------------------------------------------------------

def synthetic_catalog(n_items: int, rng: np.random.Generator) -> pd.DataFrame:
    """Items with Zipf-distributed categories (624 codes, 30% unknown) and brands (3,000), log-normal prices."""
    cats = [f"d{d}.c{c}.s{s}" for d in range(13) for c in range(8) for s in range(6)]
    cat = rng.zipf(1.3, n_items) % len(cats)
    return pd.DataFrame({
        S.PRODUCT_ID: np.sort(rng.choice(10**8, n_items, replace=False)).astype(np.int64) + 1_000_000,
        S.CATEGORY_ID: (cat + 2_053_013_552_000_000_000).astype(np.int64),
        S.CATEGORY_CODE: np.where(rng.random(n_items) < 0.3, S.UNKNOWN_CATEGORY, np.array(cats, object)[cat]),
        S.BRAND: np.array([f"brand{b}" for b in range(3000)], object)[rng.zipf(1.2, n_items) % 3000],
        S.PRICE: np.round(rng.lognormal(4, 1.2, n_items), 2), "views": 0, "carts": 0, "purchases": 0})


def synthetic_interactions(catalog: pd.DataFrame, n_users: int, rng: np.random.Generator, now: int,
                           days: int = 30, max_items: int = 50) -> Interactions:
    """Users x items events over ``days`` before ``now``: each user touches 1-``max_items`` items (runs) in
    sessions (a new one with probability 1/4 per item) at random times; a session's first item is drawn by a
    Zipf-like popularity, later ones from its category (60%) or by popularity; each item is viewed once or twice,
    carted (7%) and then bought (40% of carts)."""
    n_items = len(catalog)
    runs = rng.integers(1, max_items + 1, n_users)
    n_runs = int(runs.sum())
    run_user = np.repeat(np.arange(n_users), runs)
    pos = np.arange(n_runs) - np.repeat(np.cumsum(runs) - runs, runs)
    new_sess = (pos == 0) | (rng.random(n_runs) < 0.25)
    sess = np.cumsum(new_sess) - 1
    start = rng.integers(now - days * 86400, now - 4 * 3600, int(sess[-1]) + 1)
    start = start[np.lexsort((start, run_user[new_sess]))]  # each user's sessions in time order
    gaps = np.cumsum(rng.integers(20, 180, n_runs))
    run_ts = start[sess] + gaps - gaps[new_sess][sess]
    pop = 1.0 / (rng.permutation(n_items) + 20.0) ** 0.9
    item = rng.choice(n_items, n_runs, p=pop / pop.sum())
    key = catalog[S.CATEGORY_ID].to_numpy()
    by_cat = np.argsort(key, kind="stable")
    lo = np.searchsorted(key[by_cat], key, "left")
    size = np.searchsorted(key[by_cat], key, "right") - lo
    first = item[new_sess][sess]
    same = ~new_sess & (rng.random(n_runs) < 0.6)
    item = np.where(same, by_cat[lo[first] + (rng.random(n_runs) * size[first]).astype(np.int64)], item)
    views = 1 + (rng.random(n_runs) < 0.15)
    cart = rng.random(n_runs) < 0.07
    buy = cart & (rng.random(n_runs) < 0.4)
    n_ev = views + cart + buy
    r = np.repeat(np.arange(n_runs), n_ev)
    k = np.arange(len(r)) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)
    event = np.where(k < views[r], VIEW_I, np.where(k == views[r], CART_I, PURCHASE_I)).astype(np.int8)
    ts, u, i, s = run_ts[r] + 5 * k, run_user[r], item[r], sess[r]
    order = np.lexsort((i, u, ts))  # time order, as load_interactions sorts
    return Interactions(u[order].astype(np.int32), i[order].astype(np.int32), event[order],
                        ts[order].astype(np.int64), s[order].astype(np.int64),
                        np.arange(n_users, dtype=np.int64) + 500_000_000, catalog[S.PRODUCT_ID].to_numpy(np.int64),
                        catalog)


def synthetic_ranker(inter: Interactions, model, seed: int, label_users: int = 1000):
    """``RankerRecommender.fit`` on the synthetic window with ``model`` as its inner and serving two-tower; boosters
    that were dropped or stopped early are replaced by full-size ones on random graded labels. (ranker, facts)"""
    from lightgbm import LGBMRanker

    from recsys.model import ranker as R
    from recsys.model.ranker_features import touched
    from recsys.model.two_tower import window_key
    retriever = SimpleNamespace(model=model, report={"synthetic": "untrained two-tower"},
                                fitted_on=window_key(inter), config=model.config)
    with mock.patch.object(R, "train_two_tower", lambda *a, **k: (model, {"synthetic": "untrained two-tower"})):
        r = R.RankerRecommender(config=model.config, retriever=retriever).fit(inter)
    c = r.config
    fitted = {str(ex): None if m is None else int(m.booster_.num_trees()) for ex, m in r.rankers.items()}
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(np.flatnonzero(r.state.user_events > 0), label_users, replace=False))
    u, _, x = r._features(r.state, users)
    replaced = []
    for ex in (False, True):
        m = r.rankers[ex]
        if m is not None and m.booster_.num_trees() >= c.n_estimators:
            continue
        keep = ~touched(x) if ex else np.ones(len(x), bool)
        y = rng.choice(4, int(keep.sum()), p=[0.85, 0.09, 0.04, 0.02])
        _, groups = np.unique(u[keep], return_counts=True)
        # the constructor of ranker_training.fit_ranker, without the validation split and early stopping
        m = LGBMRanker(objective="lambdarank", n_estimators=c.n_estimators, learning_rate=c.learning_rate,
                       num_leaves=c.num_leaves, min_child_samples=20, subsample=0.8, subsample_freq=1,
                       colsample_bytree=0.8, random_state=c.seed, num_threads=1, deterministic=True,
                       force_row_wise=True, verbose=-1, label_gain=[0, 1, 3, 7])
        r.rankers[ex] = m.fit(x[keep], y, group=groups)
        replaced.append(str(ex))
    trees = {str(ex): int(m.booster_.num_trees()) for ex, m in r.rankers.items()}
    leaves = {str(ex): int(np.median([t["num_leaves"] for t in m.booster_.dump_model()["tree_info"]]))
              for ex, m in r.rankers.items()}
    facts = {"fitted_trees": fitted, "validation": r.report.get("validation"), "replaced_exclude_seen": replaced,
             "label_rows": int(len(x)), "trees": trees, "median_leaves": leaves,
             "note": "replaced boosters: random graded labels, n_estimators trees, no early stopping (worst case)"}
    r.report["synthetic"] = facts
    return r, facts


def synthetic_store(root: Path, n_items: int, n_users: int = 200_000, seed: int = 5) -> dict:
    """The synthetic model stage (with its ranker) and the real index stage under ``root``, reused when up to
    date; returns the model stage's synthetic facts."""
    from recsys.model import store as ST
    from recsys.index.stage import build_index_stage

    now = 1_572_566_399

    def fn(tmp: Path, prog) -> StageResult:
        import torch
        from recsys.model.features import ItemFeatures, build_sequences, encode_items
        from recsys.model.towers import FEATURES, TwoTowerConfig, TwoTowerModel, save_checkpoint
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        catalog = synthetic_catalog(n_items, rng)
        inter = synthetic_interactions(catalog, n_users, rng, now)
        for j, e in enumerate(("views", "carts", "purchases")):
            catalog[e] = np.bincount(inter.item[inter.event == j], minlength=n_items)
        torch.manual_seed(seed)
        feats = encode_items(catalog, np.bincount(inter.item, minlength=n_items) > 0)
        model = TwoTowerModel(TwoTowerConfig(vocab=feats.sizes()))
        model.set_item_features(feats)
        save_checkpoint(model, tmp / ST.CHECKPOINT)
        np.save(tmp / ST.EMBEDDINGS, model.all_item_vectors())
        np.save(tmp / ST.ITEM_IDS, inter.item_ids)
        np.save(tmp / ST.USER_IDS, inter.user_ids)
        ItemFeatures(**{f: model.features[i].numpy() for i, f in enumerate(FEATURES)}).save(tmp / ST.FEATURES_FILE)
        catalog.to_parquet(tmp / ST.CATALOG, index=False)
        hist = build_sequences(inter).truncate(model.config.history_len)
        save_arrays(tmp / ST.HISTORIES, {"offsets": hist.offsets, "item": hist.item, "event": hist.event,
                                         "ts": hist.ts, "session": hist.session})
        offsets, items = ST.purchases_csr(inter)
        save_arrays(tmp / ST.PURCHASES, {"offsets": offsets, "item": items})
        t1 = time.perf_counter()
        print(f"synthetic: {len(inter.ts):,} events, {len(hist.item):,} history rows in {t1 - t0:.0f} s; "
              f"fitting the ranker", file=sys.stderr)
        ranker, facts = synthetic_ranker(inter, model, seed)
        ranker.save(tmp / ST.RANKER_DIR)
        facts["seconds"] = {"data": round(t1 - t0, 1), "ranker": round(time.perf_counter() - t1, 1)}
        print(f"synthetic ranker: {json.dumps(facts)}", file=sys.stderr)
        return StageResult(rows={"items": n_items, "users": n_users, "events": int(len(inter.ts)),
                                 "history_rows": int(len(hist.item))},
                           params={"synthetic": True, "version": SYNTHETIC_VERSION},
                           extra={"now_ts": int(inter.ts.max()), "repurchase": ST.repurchase_stats(inter),
                                  "synthetic": facts})

    t0 = time.perf_counter()
    manifest, built = run_stage(root, ST.MODEL_STAGE, fn, seed=seed,
                                input_fingerprint=f"synthetic-v{SYNTHETIC_VERSION}-{n_items}-{n_users}-{seed}")
    print(f"model stage: {'built' if built else 'reused'} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    t0 = time.perf_counter()
    index, built = build_index_stage(root)
    print(f"index: {index['index']} ({'built' if built else 'reused'} in {time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    return manifest.get("synthetic", {})


# ---- timing ------------------------------------------------------------------------------------------------

def time_runs(root: Path, runs: int, calls: int, weight: float, warmup: int = 50) -> dict:
    """Served call vs the two-tower-only baseline, interleaved per user; per-run percentiles and their medians, of
    wall time and of the calling thread's CPU time (what the call costs without waiting for a core; a busy box
    still slows it through shared caches and memory bandwidth)."""
    svc = load_recommender_service(root)
    out: dict[str, list] = {"served": [], "baseline": [], "served_cpu": [], "baseline_cpu": []}
    for run in range(runs):
        rng = np.random.default_rng(run)
        users = svc.user_ids[rng.integers(0, len(svc.user_ids), calls + warmup)]
        wall: dict[int, list] = {0: [], 1: []}
        cpu: dict[int, list] = {0: [], 1: []}
        for j, u in enumerate(users):
            for which in ((0, 1) if j % 2 else (1, 0)):  # alternate which path goes first
                c0, t0 = time.thread_time(), time.perf_counter()
                if which == 0:
                    df = recommend_products_for_user(int(u), top_n=10, diversity_weight=weight, artifacts=root)
                else:
                    df = load_recommender_service(root).two_tower_for_user(int(u), top_n=10)
                dt, dc = time.perf_counter() - t0, time.thread_time() - c0
                assert len(df) > 0
                if j >= warmup:
                    wall[which].append(dt)
                    cpu[which].append(dc)
        for key, which in (("served", 0), ("baseline", 1)):
            out[key].append(percentiles(wall[which]))
            out[f"{key}_cpu"].append(percentiles(cpu[which]))
        print(f"run {run + 1}/{runs}: served {out['served'][-1]} two-tower {out['baseline'][-1]} "
              f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    return {"served": {"source": svc.source, "diversity_weight": weight, **median_of(out["served"])},
            "baseline_two_tower_only": median_of(out["baseline"]),
            "served_cpu": median_of(out["served_cpu"]), "baseline_cpu": median_of(out["baseline_cpu"]),
            "runs": runs, "per_run": out}


@contextmanager
def _timed(obj, name: str, part: str, times: dict, active: list):
    """Wrap ``obj.name`` so that each call's time is added to ``times[part]``; a predict inside another timed part
    (the reasons' occlusion) is booked apart, and "_outer" sums the outermost parts (the rest is the remainder)."""
    orig, had = getattr(obj, name), name in vars(obj)

    def wrapper(*a, **k):
        outer = not active
        active.append(part)
        t0 = time.perf_counter()
        try:
            return orig(*a, **k)
        finally:
            dt = time.perf_counter() - t0
            active.pop()
            times[part if outer else f"{active[0]}: {part}"] = times.get(
                part if outer else f"{active[0]}: {part}", 0.0) + dt
            if outer:
                times["_outer"] += dt
    setattr(obj, name, wrapper)
    try:
        yield
    finally:
        setattr(obj, name, orig) if had else delattr(obj, name)


def breakdown(root: Path, calls: int, weight: float, seed: int = 99) -> dict:
    """Once: the served call's time split into its steps (p50 and p99 per step over ``calls`` random users), by
    timing the real call's methods: candidates + features, LightGBM predict, reasons, MMR; the rest by difference."""
    import recsys.serving.service as REC
    svc = load_recommender_service(root)
    if svc.ranker is None:
        return {"note": "no ranker: the two-tower alone serves"}
    rng = np.random.default_rng(seed)
    users = svc.user_ids[rng.integers(0, len(svc.user_ids), calls + 50)]
    rows = []
    for j, u in enumerate(users):
        times = {"candidates+features": 0.0, "predict": 0.0, "reasons": 0.0, "mmr": 0.0, "_outer": 0.0}
        active: list = []
        with ExitStack() as stack:
            stack.enter_context(_timed(svc.ranker, "_features", "candidates+features", times, active))
            stack.enter_context(_timed(svc, "_explain_ranked", "reasons", times, active))
            stack.enter_context(_timed(REC, "rerank_mmr", "mmr", times, active))
            for b in svc.ranker.rankers.values():
                if b is not None:
                    stack.enter_context(_timed(b, "predict", "predict", times, active))
            t0 = time.perf_counter()
            recommend_products_for_user(int(u), top_n=10, diversity_weight=weight, artifacts=root)
            total = time.perf_counter() - t0
        if j >= 50:
            times["rest (frame, lookups, ordering)"] = total - times.pop("_outer")
            times["total"] = total
            rows.append(times)
    df = pd.DataFrame(rows).fillna(0.0) * 1000
    return {k: {"p50_ms": round(float(df[k].median()), 3), "p99_ms": round(float(df[k].quantile(0.99)), 3)}
            for k in df.columns}


def time_exact(root: Path, calls: int, seed: int = 0) -> dict:
    """Exact numpy scoring of the whole catalog for one user vector (what a call costs without an index)."""
    svc = load_recommender_service(root)
    rng = np.random.default_rng(seed)
    vecs = svc.item_vecs
    times = []
    for u in vecs[rng.integers(0, len(vecs), calls)]:
        t0 = time.perf_counter()
        s = vecs @ u
        top = np.argpartition(-s, 100)[:100]
        top[np.argsort(-s[top])]
        times.append(time.perf_counter() - t0)
    return {"what": "exact numpy top-100 over the catalog", **percentiles(times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, nargs="+", help="built artifacts directories (model and index stages)")
    p.add_argument("--synthetic-items", type=int, default=0, help="also measure a synthetic catalog this large")
    p.add_argument("--synthetic-users", type=int, default=200_000)
    p.add_argument("--synthetic-root", type=Path, default=Path("/tmp/bench-recommend-synthetic"),
                   help="where the synthetic store is built, and reused while its settings are unchanged")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=1000, help="timed calls per path and run")
    p.add_argument("--weight", type=float, default=0.3, help="diversity_weight of the served call")
    a = p.parse_args()
    out: dict = {"results": [], "load_average_start": os.getloadavg(), "cpus": os.cpu_count()}
    roots, synthetic = list(a.artifacts or []), {}
    if a.synthetic_items:
        synthetic = synthetic_store(a.synthetic_root, a.synthetic_items, a.synthetic_users)
        roots.append(a.synthetic_root)
    for root in roots:
        t0 = time.perf_counter()
        svc = load_recommender_service(root)
        res = {"artifacts": str(root), "items": len(svc.product_ids), "users": len(svc.user_ids),
               "served": svc.source, "load_seconds": round(time.perf_counter() - t0, 1), "index": svc.index_facts,
               "trees": {str(k): (b.num_trees() if b is not None else None) for k, b in
                         (svc.ranker.rankers.items() if svc.ranker is not None else [])}}
        if root == a.synthetic_root:
            res["synthetic_ranker"] = synthetic
        res["latency"] = time_runs(root, a.runs, a.calls, a.weight)
        res["breakdown"] = breakdown(root, a.calls, a.weight)
        res["exact_numpy_top100"] = time_exact(root, a.calls)
        res["load_average_end"] = os.getloadavg()
        out["results"].append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "latency"} | {"latency": {
            k: v for k, v in res["latency"].items() if k != "per_run"}}), file=sys.stderr)
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
