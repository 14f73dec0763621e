"""The ``evaluation`` build stage and its results: the protocol (``recsys.evaluation.protocol``) run on the built
events, written under ``<root>/evaluation/`` (results.parquet/.json, curve.parquet, summary.json), read back as an
``EvalResult``, and shown as tables (the Evaluation page, ``python -m recsys evaluate``).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.artifacts import EVENTS_STAGE, Progress, no_progress, require_stage, upstream_fingerprint, write_json
from recsys.journal import StageResult, run_stage
from recsys.evaluation.protocol import TARGET_LABELS, EvalConfig, EvalResult, evaluate
from recsys.ingest.interactions import load_interactions
from recsys.recommenders import registry

STAGE = "evaluation"
RESULTS_FILE, RESULTS_JSON, CURVE_FILE, SUMMARY_FILE = "results.parquet", "results.json", "curve.parquet", \
    "summary.json"


def _served_configs() -> dict[str, Any]:
    """The two-tower and ranker defaults the evaluation fits with: a change to them re-runs the stage, so the
    evaluation never describes another model than the one the model stage serves."""
    try:
        from recsys.model.ranker_state import RankerConfig
        from recsys.model.towers import TwoTowerConfig
    except ImportError:  # the baselines alone
        return {}
    return {"two_tower": TwoTowerConfig().to_dict(), "ranker": asdict(RankerConfig())}


def build_evaluation_stage(root: str | os.PathLike | None, *, force: bool = False,
                           progress: Progress = no_progress, config: EvalConfig = EvalConfig()) -> tuple[dict, bool]:
    """The ``evaluation`` stage: results.parquet/.json, curve.parquet and summary.json under ``<root>/evaluation``."""
    params = {**asdict(config), "registered": registry.names(), "models_config": _served_configs()}
    fp = upstream_fingerprint(root, [EVENTS_STAGE], params)

    def run(tmp: Path, prog: Progress) -> StageResult:
        inter = load_interactions(root)
        res = evaluate(inter, config, prog)
        res.results.to_parquet(tmp / RESULTS_FILE, index=False)
        write_json(tmp / RESULTS_JSON, json.loads(res.results.to_json(orient="records")))
        res.curve.to_parquet(tmp / CURVE_FILE, index=False)
        write_json(tmp / SUMMARY_FILE, res.summary)
        return StageResult(rows={"results": len(res.results), "curve": len(res.curve)}, params=params,
                           extra={"notes": res.summary["notes"], "timings": res.summary["timings"]})

    return run_stage(root, STAGE, run, input_fingerprint=fp, seed=config.seed, force=force, progress=progress)


def load_evaluation(root: str | os.PathLike | None = None) -> EvalResult:
    """The built evaluation: results, curve and summary."""
    d = require_stage(root, STAGE)
    return EvalResult(pd.read_parquet(d / RESULTS_FILE), pd.read_parquet(d / CURVE_FILE),
                      json.loads((d / SUMMARY_FILE).read_text()))


def select(results: pd.DataFrame, *, targets: str = "buy", exclude_seen: bool = False) -> pd.DataFrame:
    """The records of one setting."""
    return results[(results["targets"] == targets) & (results["exclude_seen"] == exclude_seen)]


def results_table(results: pd.DataFrame, *, targets: str = "buy", exclude_seen: bool = False,
                  metrics: tuple[str, ...] = ("ndcg", "recall", "hit_rate", "mrr", "coverage", "diversity",
                                              "novelty")) -> pd.DataFrame:
    """One row per model, one column per metric@K, ordered by NDCG@20 (best first)."""
    sel = select(results, targets=targets, exclude_seen=exclude_seen)
    sel = sel[sel["metric"].isin(metrics)]
    if sel.empty:
        return pd.DataFrame()
    wide = sel.pivot_table(index="model", columns=["metric", "k"], values="value", sort=False)
    order = [(m, k) for m in metrics for k in sorted(sel["k"].unique()) if (m, k) in wide.columns]
    wide = wide[order]
    wide.columns = [f"{m}@{k}" for m, k in order]
    key = "ndcg@20" if "ndcg@20" in wide.columns else wide.columns[0]
    return wide.sort_values(key, ascending=False)


def evaluation_records(results: pd.DataFrame, *, targets: str = "buy", exclude_seen: bool = False,
                       every_setting: bool = False) -> list[dict[str, Any]]:
    """JSON-able records {model, metric, k, value, ci_low, ci_high} of one setting (or all, with their setting)."""
    sel = results if every_setting else select(results, targets=targets, exclude_seen=exclude_seen)
    cols = ["model", "metric", "k", "value", "ci_low", "ci_high"] + (["targets", "exclude_seen"] if every_setting
                                                                     else [])
    out = []
    for rec in sel[cols].to_dict("records"):
        rec["k"] = int(rec["k"])
        for c in ("value", "ci_low", "ci_high"):
            rec[c] = None if pd.isna(rec[c]) else round(float(rec[c]), 6)
        if every_setting:
            rec["exclude_seen"] = bool(rec["exclude_seen"])
        out.append(rec)
    return out


def test_window(summary: dict[str, Any]) -> str:
    """The test window's length in days, or hours when shorter than two days."""
    if summary.get("test_end") and summary.get("cut"):
        hours = (pd.Timestamp(summary["test_end"]) - pd.Timestamp(summary["cut"])).total_seconds() / 3600
    else:
        hours = summary.get("test_hours", 0.0)
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def format_evaluation(res: EvalResult, *, targets: str | None = "buy", exclude_seen: bool | None = False) -> str:
    """The results as plain-text tables (one per setting), with the split and the notes."""
    s = res.summary
    lines = [f"Temporal split at {s['cut']} (test window {test_window(s)}; {s['train_events']:,} training "
             f"and {s['test_events']:,} test events; {s['n_items']:,} catalog items ranked in full)."]
    for variant in ("buy", "view"):
        for ex in (False, True):
            if (targets is not None and variant != targets) or (exclude_seen is not None and ex != exclude_seen):
                continue
            table = results_table(res.results, targets=variant, exclude_seen=ex,
                                  metrics=("ndcg", "recall", "hit_rate", "mrr", "coverage", "diversity"))
            if table.empty:
                continue
            n = int(select(res.results, targets=variant, exclude_seen=ex)["n_users"].max())
            lines += ["", f"targets = {TARGET_LABELS[variant]}, exclude_seen = {ex}, {n:,} users"]
            cols = [c for c in table.columns if c.endswith(("@10", "@20"))]
            lines.append(table[cols].to_string(float_format=lambda v: f"{v:.4f}"))
    lines += [""] + [f"note: {n}" for n in s.get("notes", [])]
    return "\n".join(lines)
