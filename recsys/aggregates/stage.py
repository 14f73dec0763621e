"""The aggregates stage: compact EDA cubes written once under ``<root>/aggregates/``, read by ``open_aggregates``.

The EDA pages never scan the event table: they filter and sum these small Parquet cubes (views over them from
:func:`open_aggregates`), so a page costs milliseconds even at October scale (42M events).

- ``hourly``: UTC hour x top-level category x brand x event type -> events, price sum (temporal charts);
- ``daily``: UTC day x category_code x brand x event type -> events, price sum (funnels, rankings, category tree);
- ``prices``: ``daily`` x log-price bin x price band (price distributions, conversion by price band);
- ``*_nb``: the three above without the brand (what "all brands" reads: 10-30x fewer rows); every cube is sorted
  by brand so a brand filter prunes to a row group or two;
- ``sessions``: per slice (all / one top category / one brand / both) x session start day x events bin x
  duration bin x reached steps -> sessions (session funnel, abandonment, session histograms);
- ``user_days``: per slice, buyer x purchase day -> purchase sessions, purchases, revenue (date-filtered buyers);
- ``users``: per slice, buyer -> totals over all days (buyers when the range covers the data, top buyers);
- ``user_activity``: per slice x day -> active, new and buying users;
- ``retention``: per slice x grain (week, month) x basis (first event, first purchase) x cohort x period ->
  active and buying users (``recsys.aggregates.retention``);
- ``product_sales``: UTC day x top-level category x brand x product -> purchases, revenue
  (``recsys.aggregates.customers``).

A slice restricts a session or a user to its events in that category and/or brand, so a filtered session funnel
is "sessions that viewed / carted / bought *this brand*". Distinct counts cannot be summed over brands, hence
the slices: the category and brand filters pick one value or all (``ALL``). The query functions live in
``funnel``, ``temporal``, ``catalog``, ``users``, ``customers`` and ``retention``; all times and days are UTC.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from recsys import schema as S
from recsys.aggregates.customers import write_product_sales
from recsys.aggregates.kpis import KPIS_FILE, TIMES, compute_kpis, write_kpis
from recsys.aggregates.query import ALL, DURATION_EDGES, EVENT_EDGES, PRICE_BAND_EDGES, STAGE
from recsys.aggregates.retention import FIRST_TABLE, first_days_sql, write_retention
from recsys.artifacts import (Progress, connect, events_path, no_progress, read_manifest, stage_dir,
                              upstream_fingerprint)
from recsys.journal import StageResult, run_stage
from recsys.engine import Engine, as_engine


@dataclass(frozen=True)
class AggregateParams:
    """Knobs of the aggregates stage."""
    price_bins_per_decade: int = 10  # log-price histogram resolution (10 -> bins ~26% wide)
    memory_limit: str | None = "5GB"  # DuckDB spills beyond it (default 80% of RAM). October size: 5.55 GiB peak, 181 s
                                      # (8GB: 8.33 GiB peak, 177 s in one run; benchmarks/RESULTS.md)
    format_version: int = 5  # 3: kpis.json; 4: fully ordered rows, exact money sums; 5: retention, product_sales


def _bin_sql(expr: str, edges: tuple[float, ...]) -> str:
    """Index of the histogram bin (by lower edges) holding ``expr``."""
    return "(" + " + ".join(f"({expr} >= {e})::INTEGER" for e in edges[1:]) + ")::TINYINT"


def _price_band_sql() -> str:
    return f"CASE WHEN price > 0 THEN {_bin_sql('price', PRICE_BAND_EDGES)} END"


def write_aggregates(con: duckdb.DuckDBPyConnection | Engine, out: Path, p: AggregateParams = AggregateParams(),
                     progress: Progress = no_progress) -> dict[str, int]:
    """Write every cube of the stage into ``out`` from the ``events`` view of ``con`` (a DuckDB connection or an
    :class:`~recsys.engine.Engine`: the same SQL runs on DuckDB and on Spark); returns row counts."""
    engine = as_engine(con)
    rows = _write_event_cubes(engine, out, p, progress)
    rows |= _write_session_cubes(engine, out, progress)
    progress(0.9, "aggregates: retention cohorts and product sales")
    rows["retention"] = write_retention(engine, str(out / "retention.parquet"), first_built=True)
    engine.drop(FIRST_TABLE)
    engine.drop("ud")
    rows["product_sales"] = write_product_sales(engine, str(out / "product_sales.parquet"))
    progress(0.95, "aggregates: store KPIs")
    write_kpis(engine, out / KPIS_FILE)
    return rows


_TOP = f"split_part({S.CATEGORY_CODE}, '.', 1)"


def _write_event_cubes(engine: Engine, out: Path, p: AggregateParams, progress: Progress) -> dict[str, int]:
    """The hourly, daily and price cubes and their brand-less rollups."""
    top, rows = _TOP, {}
    progress(0.05, "aggregates: hourly cube")
    # sorted by brand so that a brand filter reads one or two row groups (min/max pruning)
    rows["hourly"] = engine.copy(f"""
        SELECT date_trunc('hour', event_time)::{engine.dialect.naive_timestamp} AS hour, {top} AS category_top,
               brand, event_type, count(*)::BIGINT AS events, {S.money_sum_sql('price')} AS price_sum
        FROM events GROUP BY ALL ORDER BY brand, category_top, hour, event_type""", out / "hourly.parquet")
    progress(0.2, "aggregates: daily and price cubes")
    rows["prices"] = engine.copy(f"""
        SELECT event_time::DATE AS day, {top} AS category_top, category_code, brand, event_type,
               CASE WHEN price > 0 THEN floor(log10(price) * {int(p.price_bins_per_decade)}) END::SMALLINT
                   AS price_bin,
               {_price_band_sql()} AS price_band,
               count(*)::BIGINT AS events, {S.money_sum_sql('price')} AS price_sum
        FROM events GROUP BY ALL
        ORDER BY brand, category_top, day, category_code, event_type, price_bin NULLS LAST, price_band NULLS LAST""",
                                 out / "prices.parquet")
    rows["daily"] = engine.copy(f"""
        SELECT day, category_top, category_code, brand, event_type, sum(events)::BIGINT AS events,
               {S.money_sum_sql('price_sum')} AS price_sum
        FROM {engine.scan(out / "prices.parquet")} GROUP BY ALL
        ORDER BY brand, category_top, day, category_code, event_type""", out / "daily.parquet")
    # brand-less rollups: what every "all brands" view reads (10-30x fewer rows)
    keeps = {"hourly": "hour, category_top, event_type",
             "daily": "day, category_top, category_code, event_type",
             "prices": "day, category_top, category_code, event_type, price_bin, price_band"}
    for cube, keep in keeps.items():
        order = keep.replace("price_bin, price_band", "price_bin NULLS LAST, price_band NULLS LAST")
        rows[f"{cube}_nb"] = engine.copy(f"""
            SELECT {keep}, sum(events)::BIGINT AS events, {S.money_sum_sql('price_sum')} AS price_sum
            FROM {engine.scan(out / f"{cube}.parquet")} GROUP BY ALL ORDER BY {order}""", out / f"{cube}_nb.parquet")
    return rows


_MEASURES = ("min(t0) AS t0, max(t1) AS t1, sum(n) AS n, sum(views) AS views, sum(carts) AS carts, "
             "sum(purchases) AS purchases, sum(removes) AS removes, sum(revenue) AS revenue")


def _session_slices(engine: Engine) -> None:
    """Temp table ``sess``: one row per slice x session (the four slice levels of a session's events)."""
    d = engine.dialect
    # sessions are only counted, never shown: a 64-bit hash of the id groups faster than the string
    engine.table("part", f"""
        SELECT {d.hash64('user_session')} AS user_session, user_id, {_TOP} AS category_top, brand,
               min(event_time) AS t0, max(event_time) AS t1, count(*) AS n,
               count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
               count(*) FILTER (WHERE event_type = '{S.CART}') AS carts,
               count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases,
               count(*) FILTER (WHERE event_type = '{S.REMOVE}') AS removes,
               coalesce(sum(price::{S.MONEY}) FILTER (WHERE event_type = '{S.PURCHASE}'), 0) AS revenue
        FROM events GROUP BY ALL""")
    levels = [f"SELECT '{ALL}' AS category_top, '{ALL}' AS brand, user_session, user_id, {_MEASURES} "
              f"FROM part GROUP BY user_session, user_id",
              f"SELECT category_top, '{ALL}' AS brand, user_session, user_id, {_MEASURES} "
              f"FROM part GROUP BY category_top, user_session, user_id",
              f"SELECT '{ALL}' AS category_top, brand, user_session, user_id, {_MEASURES} "
              f"FROM part GROUP BY brand, user_session, user_id",
              "SELECT category_top, brand, user_session, user_id, t0, t1, n, views, carts, purchases, removes, "
              "revenue FROM part"]
    engine.table("sess", " UNION ALL ".join(levels))
    engine.drop("part")


def _write_session_cubes(engine: Engine, out: Path, progress: Progress) -> dict[str, int]:
    """The session cube, the buyer tables and user activity; leaves temp tables ``ud`` (slice x user x day) and
    ``ret_first`` (slice x user -> first days)."""
    progress(0.35, "aggregates: sessions per category and brand")
    _session_slices(engine)
    progress(0.6, "aggregates: session cube")
    d, rows = engine.dialect, {}
    duration = f"(({d.epoch_us('t1')} - {d.epoch_us('t0')}) / 1e6)"
    rows["sessions"] = engine.copy(f"""
        SELECT category_top, brand, t0::DATE AS day, {_bin_sql('n', EVENT_EDGES)} AS events_bin,
               {_bin_sql(duration, DURATION_EDGES)} AS duration_bin,
               views > 0 AS has_view, carts > 0 AS has_cart, purchases > 0 AS has_purchase,
               removes > 0 AS has_remove,
               count(*)::BIGINT AS sessions, sum(n)::BIGINT AS events,
               (sum({d.epoch_us('t1')} - {d.epoch_us('t0')}) / 1e6)::DOUBLE AS duration_s,
               sum(purchases)::BIGINT AS purchases, sum(revenue)::DOUBLE AS revenue
        FROM sess GROUP BY ALL ORDER BY category_top, brand, day, events_bin, duration_bin, has_view, has_cart,
                                        has_purchase, has_remove""", out / "sessions.parquet")
    progress(0.75, "aggregates: buyers")
    _write_buyer_tables(engine, out, rows)
    progress(0.85, "aggregates: new and returning users")
    engine.table("ud", """SELECT category_top, brand, user_id, t0::DATE AS day,
                          bool_or(purchases > 0) AS bought FROM sess GROUP BY ALL""")
    engine.drop("sess")
    # each slice-user's first days: the new users here and the cohorts of the retention table
    engine.table(FIRST_TABLE, first_days_sql("ud"))
    rows["user_activity"] = engine.copy(f"""
        WITH a AS (SELECT category_top, brand, day, count(*) AS active_users,
                          count(*) FILTER (WHERE bought) AS buyers FROM ud GROUP BY ALL),
             n AS (SELECT category_top, brand, first_event AS day, count(*) AS new_users
                   FROM {FIRST_TABLE} GROUP BY ALL)
        SELECT category_top, brand, day, active_users::BIGINT AS active_users,
               coalesce(new_users, 0)::BIGINT AS new_users, buyers::BIGINT AS buyers
        FROM a LEFT JOIN n USING (category_top, brand, day) ORDER BY category_top, brand, day""",
                                        out / "user_activity.parquet")
    return rows


def _write_buyer_tables(engine: Engine, out: Path, rows: dict[str, int]) -> None:
    """``user_days`` (buyer x purchase day) and ``users`` (buyer totals) from the session slices. Buyers are a
    few per cent of the slice-users, so their purchase sessions are grouped first and only their sessions are
    summed (a distinct day count over every session took a minute at October size)."""
    engine.table("buy_days", """
        SELECT category_top, brand, user_id, t0::DATE AS day, count(*)::BIGINT AS purchase_sessions,
               sum(purchases)::BIGINT AS purchases, sum(revenue) AS revenue
        FROM sess WHERE purchases > 0 GROUP BY ALL""")
    rows["user_days"] = engine.copy("""
        SELECT category_top, brand, user_id, day, purchase_sessions, purchases, revenue::DOUBLE AS revenue
        FROM buy_days ORDER BY category_top, brand, day, user_id""", out / "user_days.parquet")
    rows["users"] = engine.copy("""
        WITH b AS (SELECT category_top, brand, user_id, count(*)::BIGINT AS purchase_days,
                          min(day) AS first_purchase, max(day) AS last_purchase FROM buy_days GROUP BY ALL),
             t AS (SELECT category_top, brand, user_id, count(*)::BIGINT AS sessions, sum(n)::BIGINT AS events,
                          sum(views)::BIGINT AS views, sum(carts)::BIGINT AS carts,
                          sum(purchases)::BIGINT AS purchases,
                          count(*) FILTER (WHERE purchases > 0)::BIGINT AS purchase_sessions,
                          sum(revenue)::DOUBLE AS revenue
                   FROM sess JOIN (SELECT category_top, brand, user_id FROM b) k
                        USING (category_top, brand, user_id) GROUP BY ALL)
        SELECT t.*, b.purchase_days, b.first_purchase, b.last_purchase
        FROM t JOIN b USING (category_top, brand, user_id) ORDER BY category_top, brand, user_id""",
                                out / "users.parquet")
    engine.drop("buy_days")


def _fingerprint(root: str | os.PathLike | None, params: AggregateParams) -> str:
    content = {k: v for k, v in asdict(params).items() if k != "memory_limit"}  # resources do not change results
    return upstream_fingerprint(root, ["events"], content)


def aggregates_up_to_date(root: str | os.PathLike | None, params: AggregateParams = AggregateParams()) -> bool:
    """True when the aggregates stage exists and was built from the current events with these parameters."""
    m = read_manifest(root, STAGE)
    return m is not None and m.get("input_fingerprint") == _fingerprint(root, params)


def build_aggregates_stage(root: str | os.PathLike | None, *, force: bool = False,
                           progress: Progress = no_progress, params: AggregateParams = AggregateParams(),
                           engine: Any = None) -> tuple[dict, bool]:
    """The aggregates stage: the EDA cubes under ``<root>/aggregates``, skipped when events are unchanged.

    ``engine`` None runs it on DuckDB; a :class:`recsys.spark_engine.SparkSpec` runs the same SQL on Spark (the
    artifacts are the same, so the engine is recorded in the manifest but is not part of the fingerprint)."""
    fp = _fingerprint(root, params)

    def run(tmp: Path, prog: Progress) -> StageResult:
        if engine is not None:
            return _run_on_spark(root, tmp, params, engine, prog)
        with connect(root, memory_limit=params.memory_limit) as con:  # closed on errors too
            con.execute(f"SET temp_directory = '{tmp / '.spill'}'")
            con.execute("SET enable_progress_bar = false")  # progress goes through the callback
            rows = write_aggregates(con, tmp, params, prog)
        spill = tmp / ".spill"
        if spill.exists():
            shutil.rmtree(spill, ignore_errors=True)
        return StageResult(rows=rows, params=asdict(params))

    return run_stage(root, STAGE, run, input_fingerprint=fp, force=force, progress=progress)


def _run_on_spark(root: str | os.PathLike | None, tmp: Path, params: AggregateParams, spec: Any,
                  progress: Progress) -> StageResult:
    """The stage's SQL on Spark (part files in a scratch folder, merged into the same one-file tables)."""
    from recsys.spark_engine import SparkEngine
    scratch = tmp / ".spark"
    engine = SparkEngine.over_events(spec, events_path(root), scratch)
    try:
        rows = write_aggregates(engine, tmp, params, progress)
    finally:
        engine.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return StageResult(rows=rows, params=asdict(params), extra={"engine": "spark", "spark_master": spec.label})


def store_kpis(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The store's KPIs: from the aggregates stage when it is current, else computed live from the events."""
    path = stage_dir(root, "aggregates") / KPIS_FILE
    try:
        if path.exists() and aggregates_up_to_date(root):
            k = json.loads(path.read_text())
            return {key: (pd.Timestamp(v) if key in TIMES else v) for key, v in k.items()}
    except (ValueError, OSError):  # unreadable or stale: fall through to the live figures
        pass
    with connect(root) as con:
        return compute_kpis(con)
