"""Reading the aggregates stage: ``open_aggregates`` (a view per cube) and the filters every EDA query applies.

What the cubes hold is in ``recsys.aggregates.stage``; the page queries are ``funnel``, ``temporal``, ``catalog``,
``users``, ``customers`` and ``retention``, all over the connection ``open_aggregates`` returns.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from recsys.artifacts import ArtifactError, require_stage, sql_literal

log = logging.getLogger(__name__)

STAGE = "aggregates"
ALL = "*"  # the slice value meaning "every category" / "every brand"
TABLES = ("hourly", "hourly_nb", "daily", "daily_nb", "prices", "prices_nb", "sessions", "user_days", "users",
          "user_activity", "retention", "product_sales")

# Histogram edges (lower bounds) and their labels.
EVENT_EDGES = (1, 2, 3, 4, 5, 6, 11, 21, 51)
EVENT_LABELS = ("1", "2", "3", "4", "5", "6-10", "11-20", "21-50", "51+")
DURATION_EDGES = (0, 1, 10, 30, 60, 120, 300, 600, 1800, 3600)
DURATION_LABELS = ("0 s", "1-10 s", "10-30 s", "30-60 s", "1-2 min", "2-5 min", "5-10 min", "10-30 min",
                   "30-60 min", "1 h+")
PRICE_BAND_EDGES = (0.01, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
PRICE_BAND_LABELS = ("< $5", "$5-10", "$10-25", "$25-50", "$50-100", "$100-250", "$250-500", "$500-1,000",
                     "$1,000-2,500", "$2,500+")


@dataclass(frozen=True)
class EdaFilters:
    """The shared EDA filters: an inclusive UTC date range, one top-level category, one brand (None = all)."""
    start: dt.date | None = None
    end: dt.date | None = None
    category: str | None = None
    brand: str | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"the date range starts after it ends ({self.start} > {self.end}); swap the dates")

    def describe(self) -> str:
        """A short human label, e.g. '2019-10-01 → 2019-10-07 · electronics · samsung'."""
        days = f"{self.start or 'start'} → {self.end or 'end'}" if (self.start or self.end) else "all days"
        return " · ".join([days, self.category or "all categories", self.brand or "all brands"])





def open_aggregates(root: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per cube over its Parquet file (give each thread its own
    ``cursor()``). Views, not tables: loading every cube into memory took 5.0 s at Oct+Nov (110M events, 150 MB of
    cubes) before the Overview could draw its one chart, while the Explore pages' queries over the views measured
    within noise of the tables (``benchmarks/eda_pages.py --artifacts /work/bench/octnov --runs 3``: worst median
    uncached run 666 ms against 791 ms). Creating a view reads each file's footer, so a damaged cube still fails
    here."""
    d = require_stage(root, STAGE)
    missing = [d / f"{t}.parquet" for t in TABLES if not (d / f"{t}.parquet").exists()]
    if missing:
        raise ArtifactError(f"{missing[0]} is missing; rebuild with `python -m recsys build --force`")
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for t in TABLES:
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({sql_literal(d / f'{t}.parquet')})")
    except BaseException:
        con.close()  # a damaged cube: nothing half-open is left behind
        raise
    return con


def where(f: EdaFilters, *, time_col: str = "day", sliced: bool = False,
          category_col: str = "category_top") -> tuple[str, list[Any]]:
    """SQL ``WHERE`` clause and parameters applying the filters to a cube (``sliced`` for per-slice cubes)."""
    clauses, params = ["TRUE"], []
    day = f"{time_col}::DATE" if time_col != "day" else "day"
    if f.start:
        clauses.append(f"{day} >= ?")
        params.append(f.start)
    if f.end:
        clauses.append(f"{day} <= ?")
        params.append(f.end)
    if sliced:
        clauses += ["category_top = ?", "brand = ?"]
        params += [f.category or ALL, f.brand or ALL]
    else:
        if f.category:
            clauses.append(f"{category_col} = ?")
            params.append(f.category)
        if f.brand:
            clauses.append("brand = ?")
            params.append(f.brand)
    return " AND ".join(clauses), params


def cube(name: str, f: EdaFilters, dim: str | None = None) -> str:
    """The table to scan for ``name`` (hourly, daily, prices): its brand-less rollup unless a brand is chosen
    or the query groups by brand (``dim``)."""
    return name if f.brand or dim == "brand" else f"{name}_nb"


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
    """Run a parameterised query and return a DataFrame."""
    return con.execute(sql, params or []).df()


def filter_options(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What the filter widgets offer: the UTC day range, top categories and brands (by events, most first)."""
    first, last = con.execute("SELECT min(day), max(day) FROM daily_nb").fetchall()[0]
    cats = query(con, "SELECT category_top, sum(events) AS events FROM daily_nb GROUP BY 1 ORDER BY 2 DESC, 1")
    brands = query(con, "SELECT category_top, brand, sum(events) AS events FROM daily GROUP BY 1, 2")
    return {"first_day": first, "last_day": last, "categories": cats["category_top"].tolist(),
            "brands": brands}


def brands_for(options: dict[str, Any], category: str | None) -> list[str]:
    """Brand names by events, most first, within one top category (all when None)."""
    b = options["brands"]
    if category:
        b = b[b["category_top"] == category]
    return b.groupby("brand")["events"].sum().sort_values(ascending=False, kind="stable").index.tolist()


def safe_rate(num: pd.Series | float, den: pd.Series | float) -> Any:
    """num / den with 0 where den is 0."""
    if isinstance(den, pd.Series):
        return (num / den.where(den > 0)).fillna(0.0)
    return float(num) / float(den) if den else 0.0
