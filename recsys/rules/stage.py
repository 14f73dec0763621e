"""The rules stage: the default association rules, their items (readable labels) and the category complements,
mined once and stored under ``<root>/rules/``, and their readers.

:func:`build_rules_stage` builds it (on DuckDB, or with a SparkSpec on Spark through ``spark``); :func:`load_rules`
and :func:`load_category_complements` read it back; :func:`requested_params` and :func:`default_params` say what it
was built with. The mining itself is ``mining`` (over ``baskets``); ``complements`` computes the category table.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, replace
from typing import Any

import pandas as pd

from recsys import schema as S
from recsys.artifacts import Progress, connect, no_progress, read_manifest, require_stage, upstream_fingerprint
from recsys.journal import StageResult, run_stage
from recsys.engine import as_engine
from recsys.ingest.adapters import load_product_names
from recsys.rules.complements import category_complements_con
from recsys.rules.mining import ITEM_COLUMNS, RULE_COLUMNS, RulesResult, mine_rules_con
from recsys.rules.params import RuleParams
from recsys.rules.spark import on_spark

log = logging.getLogger(__name__)

STAGE = "rules"
RULES_FILE, ITEMS_FILE, COMPLEMENTS_FILE = "rules.parquet", "items.parquet", "category_complements.parquet"


def build_rules(root: str | os.PathLike | None, out, params: RuleParams = RuleParams(),
                progress: Progress = no_progress, spark: Any = None) -> StageResult:
    """Write the default rules, their items and the category complements into ``out``; with ``spark`` (a
    SparkSpec) the scans of the events and the frequent itemsets (FP-growth) run on Spark."""
    with connect(root, memory_limit="4GB") as con:  # closed on errors too
        con.execute("SET enable_progress_bar = false")
        params, note = _scope(con, params)
        engine, extra, scratch = as_engine(con), {}, out / ".spark"
        mine: dict[str, Any] = {}
        try:
            try:
                if spark is not None:
                    engine, mine = on_spark(root, con, params, spark, scratch)
                    extra = {"engine": "spark", "spark_master": spark.label}
                names = load_product_names(root) if params.granularity == "product" else None
                res = mine_rules_con(con, params, lambda f, m: progress(0.8 * f, m), names, **mine)
            except ValueError as exc:  # data that explodes at the defaults must not break the whole build
                note = f"{note} {exc}" if note else str(exc)
                log.warning("rules: %s", note)
                res = RulesResult(pd.DataFrame({c: pd.Series(dtype=object) for c in RULE_COLUMNS}),
                                  pd.DataFrame({c: pd.Series(dtype=t) for c, t in ITEM_COLUMNS.items()}), {})
            progress(0.85, "category complements")
            cc = category_complements_con(engine, params.basket)
        finally:  # whatever failed: the engine's cached tables and Spark's part files gone (the connection too)
            engine.close()
            shutil.rmtree(scratch, ignore_errors=True)
    res.rules.to_parquet(out / RULES_FILE, index=False)
    res.items.to_parquet(out / ITEMS_FILE, index=False)
    cc.to_parquet(out / COMPLEMENTS_FILE, index=False)
    stats = {k: v for k, v in res.stats.items() if k != "params"}
    resolved = res.stats.get("params", asdict(params))  # the auto support as the number it became
    return StageResult(rows={"rules": len(res.rules), "items": len(res.items), "category_complements": len(cc)},
                       params=resolved, extra={"mining": stats, "note": note, "requested_params": asdict(params),
                                               **extra})


def _scope(con: Any, params: RuleParams) -> tuple[RuleParams, str | None]:
    """The parameters to mine with, and a note when they differ from those asked for: a purchase log (UCI Online
    Retail, a till export) has no views, so its baskets are its orders."""
    if params.scope == "views" and not con.execute(
            f"SELECT 1 FROM events WHERE {S.EVENT_TYPE} = '{S.VIEW}' LIMIT 1").fetchall():
        return replace(params, scope="purchases_carts"), ("The store has no views: the default rules are mined "
                                                          "from carts and purchases.")
    return params, None


def build_rules_stage(root: str | os.PathLike | None, *, force: bool = False, progress: Progress = no_progress,
                      params: RuleParams = RuleParams(), engine: Any = None) -> tuple[dict, bool]:
    """The ``rules`` build stage (skipped when events and parameters are unchanged); ``engine`` a SparkSpec runs
    it on Spark (the same artifacts, so the engine is not part of the fingerprint)."""
    fp = upstream_fingerprint(root, ["events"], asdict(params))
    return run_stage(root, STAGE, lambda out, prog: build_rules(root, out, params, prog, engine),
                     input_fingerprint=fp, force=force, progress=progress)


def load_rules(root: str | os.PathLike | None) -> RulesResult:
    """The stage's default rules, items and category complements (in ``stats['complements']``)."""
    d = require_stage(root, STAGE)
    m = read_manifest(root, STAGE) or {}
    stats = {**m.get("mining", {}), "note": m.get("note"), "params": m.get("params", {}),
             "complements": load_category_complements(root)}
    return RulesResult(pd.read_parquet(d / RULES_FILE), pd.read_parquet(d / ITEMS_FILE), stats)


def load_category_complements(root: str | os.PathLike | None) -> pd.DataFrame:
    """The stage's category complements, as ``category_complements_con`` returns them (category, other_category,
    rank, baskets, category_baskets, support, confidence, lift)."""
    return pd.read_parquet(require_stage(root, STAGE) / COMPLEMENTS_FILE)


def requested_params(root: str | os.PathLike | None) -> RuleParams:
    """The parameters the built stage was asked for (min_support None = auto), RuleParams() when absent."""
    known = set(asdict(RuleParams()))
    m = read_manifest(root, STAGE) or {}
    asked = m.get("requested_params") or m.get("params") or {}
    return replace(RuleParams(), **{k: v for k, v in asked.items() if k in known})


def default_params(root: str | os.PathLike | None) -> RuleParams:
    """The parameters the built stage used, the auto support resolved (RuleParams() when absent)."""
    known = set(asdict(RuleParams()))
    m = read_manifest(root, STAGE) or {}
    return replace(RuleParams(), **{k: v for k, v in m.get("params", {}).items() if k in known})
