"""Store-level headline figures (the Overview page's KPIs), computed by DuckDB over the cleaned events.

The aggregates stage stores them (``aggregates/kpis.json``): at October size the distinct counts take ~10 s, too
long for a page's first view. :func:`store_kpis` reads that file when it was built from the current events and
computes them live otherwise.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from recsys import schema as S
from recsys.engine import Engine, as_engine

KPIS_FILE = "kpis.json"
TIMES = ("first_event", "last_event")


def compute_kpis(con: duckdb.DuckDBPyConnection | Engine) -> dict[str, Any]:
    """Events, users, products, sessions, date range, events per type, purchases and revenue of the ``events``
    view of ``con`` (a DuckDB connection or an engine)."""
    row = as_engine(con).fetch(f"""
        SELECT count(*) AS events, count(DISTINCT user_id) AS users, count(DISTINCT product_id) AS products,
               count(DISTINCT user_session) AS sessions, min(event_time) AS first_event,
               max(event_time) AS last_event,
               count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
               count(*) FILTER (WHERE event_type = '{S.CART}') AS carts,
               count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases,
               count(*) FILTER (WHERE event_type = '{S.REMOVE}') AS removes,
               {S.money_sum_sql('price', f"event_type = '{S.PURCHASE}'")} AS revenue,
               count(DISTINCT user_id) FILTER (WHERE event_type = '{S.PURCHASE}') AS buyers,
               count(DISTINCT category_code) AS categories, count(DISTINCT brand) AS brands
        FROM events
    """).iloc[0]
    out = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    out["first_event"], out["last_event"] = row["first_event"], row["last_event"]
    return out


def write_kpis(con: duckdb.DuckDBPyConnection | Engine, path: Path) -> None:
    """Compute the KPIs and store them as JSON (times as ISO strings)."""
    k = compute_kpis(con)
    path.write_text(json.dumps({key: (v.isoformat() if key in TIMES else v) for key, v in k.items()}, indent=1))
