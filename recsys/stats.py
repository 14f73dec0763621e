"""Store-level headline figures (the Overview page's KPIs), computed by DuckDB over the cleaned events."""
from __future__ import annotations

import os
from typing import Any

from recsys import schema as S
from recsys.artifacts import connect


def store_kpis(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Events, users, products, sessions, date range, events per type, purchases and revenue."""
    con = connect(root)
    row = con.execute(f"""
        SELECT count(*) AS events, count(DISTINCT user_id) AS users, count(DISTINCT product_id) AS products,
               count(DISTINCT user_session) AS sessions, min(event_time) AS first_event,
               max(event_time) AS last_event,
               count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
               count(*) FILTER (WHERE event_type = '{S.CART}') AS carts,
               count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases,
               count(*) FILTER (WHERE event_type = '{S.REMOVE}') AS removes,
               coalesce(sum(price) FILTER (WHERE event_type = '{S.PURCHASE}'), 0) AS revenue,
               count(DISTINCT user_id) FILTER (WHERE event_type = '{S.PURCHASE}') AS buyers,
               count(DISTINCT category_code) AS categories, count(DISTINCT brand) AS brands
        FROM events
    """).df().iloc[0]
    out = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    out["first_event"], out["last_event"] = row["first_event"], row["last_event"]
    return out
