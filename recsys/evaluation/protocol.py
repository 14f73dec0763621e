"""The evaluation protocol: one time split, its targets, and every registered recommender fitted on the training
window and scored over the ``Recommender`` contract, with bootstrap confidence intervals over users.

The build stage that runs it on the built events, and the tables of its results, are in
``recsys.evaluation.stage``; the models come from ``recsys.recommenders.registry``, the metrics from
``recsys.metrics``. The paragraph below is copied as it stands into the stage's summary (``summary["protocol"]``).

Protocol (stated the same way on the Evaluation page and in the README):
- the events are cut at one time: the last ``test_fraction`` of events (by time) form the test window, everything
  before the cut is the training window; every model is fitted on the training window only;
- targets are the items each user interacts with in the test window: carts and purchases ("buy", the default),
  or views, carts and purchases ("view"); only users with at least one training event are scored (cold users
  have nothing to personalise from), at most ``max_users`` of them (``max_view_users`` for the views variant),
  drawn with a fixed seed; every model ranks the full catalog;
- both settings of already-seen items are reported: ``exclude_seen=False`` lets models recommend items the user
  touched in training (repeat purchases matter in e-commerce); ``exclude_seen=True`` removes them from the lists
  and from the targets, measuring discovery of new items (users left without targets are dropped);
- Recall, NDCG, HitRate and MRR at K in {10, 20, 50}, catalog coverage, intra-list category diversity and
  novelty; 95% bootstrap confidence intervals over users (the same resampled users for every model).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys import metrics as M
from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.ingest.interactions import Interactions
from recsys.recommenders import registry

log = logging.getLogger(__name__)

TARGETS: dict[str, tuple[str, ...]] = {"buy": (S.CART, S.PURCHASE), "view": (S.VIEW, S.CART, S.PURCHASE)}
TARGET_LABELS = {"buy": "carts + purchases", "view": "views + carts + purchases"}
RANKING_METRICS = ("recall", "ndcg", "hit_rate", "mrr")
LIST_METRICS = ("coverage", "diversity", "novelty")
CURVE_K = 20
CURVE_MODEL = "two_tower"  # the model whose lists the accuracy-diversity curve re-ranks


@dataclass(frozen=True)
class EvalConfig:
    """Knobs of the protocol (all recorded in the stage manifest)."""
    test_fraction: float = 0.2
    ks: tuple[int, ...] = (10, 20, 50)
    max_users: int = 1000       # users sampled for the carts + purchases targets (the headline setting)
    max_view_users: int = 500   # users sampled for the views variant
    seed: int = 0
    n_boot: int = 200
    models: tuple[str, ...] | None = None  # None: every registered model
    curve_weights: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
    curve_users: int = 1000
    # optional wall-clock cap on the two-tower's training; None keeps its own (deterministic, example-counted)
    # budget, so the evaluated two-tower is the same model the build trains, fitted on the training window
    two_tower_seconds: float | None = None


@dataclass
class Split:
    """The training window, the test window and the cut between them (seconds since epoch, UTC)."""
    train: Interactions
    test: Interactions
    cut: int


Setting = tuple[np.ndarray, sp.csr_matrix]  # the scored users' codes (sorted) and their target rows


@dataclass
class EvalResult:
    """Long table of metric records, the accuracy-diversity curve, and facts about the run."""
    results: pd.DataFrame
    curve: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def temporal_split(inter: Interactions, test_fraction: float = 0.2) -> Split:
    """Cut at the time that leaves the last ``test_fraction`` of events for testing."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (got {test_fraction})")
    if len(inter.ts) < 2:
        raise ValueError("the store has fewer than 2 events; nothing to split into training and test windows")
    cut = int(inter.ts[min(len(inter.ts) - 1, int(len(inter.ts) * (1 - test_fraction)))])
    if cut <= int(inter.ts[0]):
        cut = int(inter.ts[0]) + 1  # every event at the first instant: keep at least those for training
    return Split(inter.window(None, cut), inter.window(cut, None), cut)


def target_matrix(split: Split, events: tuple[str, ...], *, exclude_seen: bool) -> sp.csr_matrix:
    """(n_users, n_items) test targets of users with training history; seen pairs removed with exclude_seen."""
    tr, te = split.train, split.test
    has_history = np.zeros(tr.n_users, bool)
    has_history[tr.user] = True
    codes = [S.EVENT_CODE[e] for e in events]
    keep = np.isin(te.event, codes) & has_history[te.user]
    t = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (te.user[keep], te.item[keep])),
                      shape=(tr.n_users, tr.n_items))
    t.sum_duplicates()
    t.data[:] = 1.0
    if exclude_seen:
        seen = sp.csr_matrix((np.ones(len(tr.user), np.float32), (tr.user, tr.item)), shape=t.shape)
        t = t - t.multiply(seen > 0)
        t.eliminate_zeros()
    return t.tocsr()


def sample_users(targets: sp.csr_matrix, max_users: int, seed: int) -> np.ndarray:
    """Sorted codes of users with at least one target, at most ``max_users`` of them (fixed seed)."""
    users = np.flatnonzero(np.diff(targets.indptr) > 0)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return users


def _model_kwargs(name: str, config: EvalConfig, progress: Progress, users: np.ndarray) -> dict[str, Any]:
    """The two-tower family's training budget and progress; the served ranker also learns which ``users`` it will
    be asked about: its per-user serving state is built for them alone (the same lists; at Oct+Nov size the state
    over all 8.2M users does not fit beside the evaluation's other data)."""
    if name not in registry.TWO_TOWER_FAMILY:
        return {}
    from dataclasses import replace as dc_replace

    from recsys.model.towers import TwoTowerConfig
    cfg = TwoTowerConfig()
    if config.two_tower_seconds is not None:
        cfg = dc_replace(cfg, max_seconds=min(cfg.max_seconds, config.two_tower_seconds))
    extra = {"serve_users": users} if name == "two_tower_ranker" else {}
    return {"config": cfg, "progress": progress, **extra}


def _records(model: str, variant: str, exclude_seen: bool, recs: np.ndarray, targets: sp.csr_matrix,
             ctx: dict[str, Any], config: EvalConfig) -> list[dict[str, Any]]:
    """Every metric at every K for one model on one setting."""
    out = []
    n = len(recs)
    boot = {"n_boot": config.n_boot, "seed": config.seed}
    h = M.hits(recs, targets, max(config.ks))
    nt = M.n_targets(targets)
    for k in config.ks:
        per_user = {
            "recall": M.recall_from_hits(h, nt, k), "ndcg": M.ndcg_from_hits(h, nt, k),
            "hit_rate": M.hit_rate_from_hits(h, k), "mrr": M.mrr_from_hits(h, k),
            "novelty": M.novelty_at_k(recs, ctx["popularity"], k),
        }
        if ctx["has_categories"]:
            per_user["diversity"] = M.intra_list_diversity(recs, ctx["categories"], k)
        for metric, values in per_user.items():
            v, lo, hi = M.bootstrap_ci(values, **boot)
            out.append(dict(metric=metric, k=k, value=v, ci_low=lo, ci_high=hi))
        v, lo, hi = M.coverage_ci(recs, ctx["n_items"], k, **boot)
        out.append(dict(metric="coverage", k=k, value=v, ci_low=lo, ci_high=hi))
    for r in out:
        r.update(model=model, targets=variant, exclude_seen=exclude_seen, n_users=n)
    return out


def _context(split: Split) -> dict[str, Any]:
    """What the list metrics need: item popularity (novelty) and categories (diversity)."""
    tr = split.train
    users_per_item = np.zeros(tr.n_items)
    if len(tr.user):
        pairs = np.unique(tr.user.astype(np.int64) * tr.n_items + tr.item)
        users_per_item = np.bincount(pairs % tr.n_items, minlength=tr.n_items).astype(float)
    n_train_users = len(np.unique(tr.user))
    cats = S.category_keys(tr.catalog)
    return {"popularity": (users_per_item + 1) / (n_train_users + 1), "categories": cats,
            "has_categories": len(np.unique(cats)) > 1, "n_items": tr.n_items}


def evaluate(inter: Interactions, config: EvalConfig = EvalConfig(), progress: Progress = no_progress) -> EvalResult:
    """Fit every model on the training window and score it on every target variant and seen setting."""
    from threadpoolctl import threadpool_limits
    # one BLAS thread: the models are small, and oversubscribed BLAS threads on a busy 2-core box run 5-10x slower
    with threadpool_limits(limits=1):
        return _evaluate(inter, config, progress)


def _evaluate(inter: Interactions, config: EvalConfig, progress: Progress) -> EvalResult:
    t_start = time.perf_counter()
    split = temporal_split(inter, config.test_fraction)
    notes: list[str] = []
    variants = _target_variants(inter, notes)
    settings = _settings(split, variants, config, notes)
    ctx = _context(split)
    if not ctx["has_categories"]:
        notes.append("The store has no categories: intra-list category diversity is not reported.")
    names = list(config.models) if config.models is not None else registry.names()
    for name, why in registry.UNAVAILABLE.items():
        if config.models is None or name in config.models:
            notes.append(f"{registry.label(name)} skipped: {why}.")
    scored = _score_models(names, split, settings, ctx, config, progress, notes)
    curve = _curve(scored.fitted.get(CURVE_MODEL), names, settings, ctx, config, progress, notes)
    results = pd.DataFrame.from_records(scored.records, columns=["model", "targets", "exclude_seen", "metric", "k",
                                                                 "value", "ci_low", "ci_high", "n_users"])
    summary = _summary(inter, split, variants, settings, names, scored, notes, config, t_start)
    progress(1.0, "evaluation complete")
    return EvalResult(results, curve, summary)


def _target_variants(inter: Interactions, notes: list[str]) -> dict[str, tuple[str, ...]]:
    """The target variants this store can tell apart (no views: the views variant is the buy one)."""
    has = {e: bool(np.any(inter.event == S.EVENT_CODE[e])) for e in S.EVENT_TYPES}
    variants = dict(TARGETS)
    if not has[S.VIEW]:
        variants.pop("view")
        notes.append("The store has no view events: the views target variant is the same as carts + purchases "
                     "and is not reported separately.")
    return variants


def _settings(split: Split, variants: dict[str, tuple[str, ...]], config: EvalConfig,
              notes: list[str]) -> dict[tuple[str, bool], Setting]:
    """The users and targets of every (variant, exclude_seen) setting; one user sample per variant."""
    settings: dict[tuple[str, bool], Setting] = {}
    for variant, events in variants.items():
        base = target_matrix(split, events, exclude_seen=False)
        users = sample_users(base, config.max_users if variant == "buy" else config.max_view_users, config.seed)
        for ex in (False, True):
            t = target_matrix(split, events, exclude_seen=ex) if ex else base
            u = users[np.diff(t.indptr)[users] > 0]
            if len(u):
                settings[(variant, ex)] = (u, t[u])
            else:
                notes.append(f"No user has {TARGET_LABELS[variant]} targets in the test window"
                             f"{' that were not seen in training' if ex else ''}: that setting is skipped.")
    return settings


@dataclass
class _Scored:
    """What scoring the models leaves: their metric records and timings, the names evaluated, the labels of those
    that only recommend seen items, and the fitted models kept for reuse."""
    records: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    evaluated: list[str] = field(default_factory=list)
    only_seen: list[str] = field(default_factory=list)
    fitted: dict[str, Any] = field(default_factory=dict)


def _score_models(names: list[str], split: Split, settings: dict[tuple[str, bool], Setting], ctx: dict[str, Any],
                  config: EvalConfig, progress: Progress, notes: list[str]) -> _Scored:
    """Fit each model in turn on the training window and score it on every setting."""
    all_users = np.unique(np.concatenate([u for u, _ in settings.values()])) if settings else np.zeros(0, int)
    kmax = max(config.ks)
    scored = _Scored()
    # the only fitted models kept: those another model reuses and the curve's; at October size every other
    # model holds gigabytes, so each is dropped once it has been scored
    keep = {registry.upstream(n) for n in names} | {CURVE_MODEL}
    for i, name in enumerate(names):
        if name in registry.UNAVAILABLE:
            continue
        sub = lambda f, msg, i=i: progress((i + max(0.0, min(1.0, f))) / (len(names) + 1), f"{name}: {msg}")
        sub(0.0, "fitting")
        t0 = time.perf_counter()
        try:
            model = registry.fit(name, split.train, scored.fitted.get(registry.upstream(name) or ""),
                                 **_model_kwargs(name, config, sub, all_users))
        except ValueError as exc:  # e.g. too little data for a model: report it, evaluate the others
            notes.append(f"{registry.label(name)} skipped: {exc}")
            log.warning("evaluation: %s skipped: %s", name, exc)
            continue
        scored.evaluated.append(name)
        if name in keep:
            scored.fitted[name] = model
        if model.only_seen:
            scored.only_seen.append(registry.label(name))
        t1 = time.perf_counter()
        scored.records += _score(name, model, all_users, kmax, settings, ctx, config)
        scored.timings[name] = {"fit_s": round(t1 - t0, 2), "recommend_s": round(time.perf_counter() - t1, 2)}
        log.info("evaluated %s in %.1f s", name, time.perf_counter() - t0)
        del model
    if scored.only_seen:
        notes.append(f"{', '.join(scored.only_seen)} only ever recommend the user's own items, so they have no "
                     f"exclude_seen=True results.")
    return scored


def _score(name: str, model: Any, all_users: np.ndarray, kmax: int, settings: dict[tuple[str, bool], Setting],
           ctx: dict[str, Any], config: EvalConfig) -> list[dict[str, Any]]:
    """One fitted model's records: its top-``kmax`` lists of ``all_users`` once per seen setting, cut per setting."""
    records: list[dict[str, Any]] = []
    wanted = tuple(ex for ex in (False, True) if any(e == ex for _, e in settings)
                   and not (ex and model.only_seen))
    for ex, rec in model.recommend_settings(all_users, kmax, wanted).items():
        for (variant, e), (users, targets) in settings.items():
            if e == ex:
                rows = np.searchsorted(all_users, users)
                records += _records(name, variant, ex, rec.items[rows], targets, ctx, config)
    return records


def _curve(two_tower: Any, names: list[str], settings: dict[tuple[str, bool], Setting], ctx: dict[str, Any],
           config: EvalConfig, progress: Progress, notes: list[str]) -> pd.DataFrame:
    """The accuracy-diversity curve when the two-tower, categories and carts/purchases targets exist, else empty
    (with a note saying why)."""
    if two_tower is not None and not ctx["has_categories"]:
        notes.append("The accuracy-diversity curve re-ranks by category; this store has none, so it is not drawn.")
    elif two_tower is not None and ("buy", False) in settings:
        progress(len(names) / (len(names) + 1), "accuracy-diversity curve")
        return accuracy_diversity_curve(two_tower, settings[("buy", False)], ctx, config)
    elif CURVE_MODEL in names:
        notes.append("The accuracy-diversity curve needs the two-tower and carts/purchases targets; not drawn.")
    return pd.DataFrame()


def _summary(inter: Interactions, split: Split, variants: dict[str, tuple[str, ...]],
             settings: dict[tuple[str, bool], Setting], names: list[str], scored: _Scored, notes: list[str],
             config: EvalConfig, t_start: float) -> dict[str, Any]:
    """Facts about the run: the protocol, the split, users per setting, the models and their timings, the notes."""
    return {
        "protocol": __doc__.split("Protocol (stated the same way on the Evaluation page and in the README):")[1]
        .strip(),
        "cut": pd.Timestamp(split.cut, unit="s", tz="UTC").isoformat(),
        "train_events": int(len(split.train.ts)), "test_events": int(len(split.test.ts)),
        "train_start": _iso(split.train.ts[0] if len(split.train.ts) else None),
        "test_end": _iso(split.test.ts[-1] if len(split.test.ts) else None),
        "test_days": round(float(split.test.ts[-1] - split.cut) / 86400, 2) if len(split.test.ts) else 0.0,
        "test_hours": round(float(split.test.ts[-1] - split.cut) / 3600, 2) if len(split.test.ts) else 0.0,
        "users": {f"{v}|exclude_seen={e}": int(len(u)) for (v, e), (u, _) in settings.items()},
        "eligible_users": {v: int((np.diff(target_matrix(split, ev, exclude_seen=False).indptr) > 0).sum())
                           for v, ev in variants.items()},
        "n_items": int(inter.n_items), "models": scored.evaluated,
        "labels": {n: registry.label(n) for n in names}, "timings": scored.timings, "notes": notes,
        "config": asdict(config), "duration_s": round(time.perf_counter() - t_start, 2),
    }


def _iso(ts: Any) -> str | None:
    return None if ts is None else pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()


def accuracy_diversity_curve(two_tower: Any, setting: tuple[np.ndarray, sp.csr_matrix], ctx: dict[str, Any],
                             config: EvalConfig) -> pd.DataFrame:
    """NDCG, recall, category diversity and coverage at K=20 of the two-tower over MMR diversity weights."""
    users, targets = setting
    if len(users) > config.curve_users:
        keep = np.sort(np.random.default_rng(config.seed).choice(len(users), config.curve_users, replace=False))
        users, targets = users[keep], targets[keep]
    rows = []
    for w in config.curve_weights:
        model = two_tower.with_diversity(w, f"two_tower_mmr{w:g}")
        rec = model.recommend(users, CURVE_K, exclude_seen=False).items
        row = {"diversity_weight": float(w), "k": CURVE_K, "n_users": len(users)}
        for metric, values in (("ndcg", M.ndcg_at_k(rec, targets, CURVE_K)),
                               ("recall", M.recall_at_k(rec, targets, CURVE_K)),
                               ("diversity", M.intra_list_diversity(rec, ctx["categories"], CURVE_K))):
            row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = M.bootstrap_ci(
                values, n_boot=config.n_boot, seed=config.seed)
        row["coverage"] = M.catalog_coverage(rec, ctx["n_items"], CURVE_K)
        rows.append(row)
    return pd.DataFrame(rows)
