"""Funnel aggregates: view -> cart -> purchase counts and step conversion, per month, per category / brand,
per session, cart abandonment and removals. Inputs: a connection from :func:`recsys.aggregates.query.open_aggregates`.

Event-level rates divide event counts (cart rate = carts / views, purchase rate = purchases / carts,
view-to-purchase = purchases / views); session-level shares divide sessions of the filtered slice.
"""
from __future__ import annotations

import duckdb
import pandas as pd

from recsys import schema as S
from recsys.aggregates.query import EdaFilters, cube, query, safe_rate, where

STEPS = (S.VIEW, S.CART, S.PURCHASE)
DIMENSIONS = {"category_top": "top-level category", "category_code": "category", "brand": "brand"}


def _counts_sql() -> str:
    return (f"sum(events) FILTER (WHERE event_type = '{S.VIEW}') AS views, "
            f"sum(events) FILTER (WHERE event_type = '{S.CART}') AS carts, "
            f"sum(events) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases, "
            f"sum(events) FILTER (WHERE event_type = '{S.REMOVE}') AS removes, "
            f"sum(price_sum) FILTER (WHERE event_type = '{S.PURCHASE}') AS revenue")


def rated(inner: str, *, where: str = "TRUE", order: str = "", limit: int | None = None) -> str:
    """Wrap a query giving views/carts/purchases/removes/revenue: zero-fill, cast, add the four rates (in SQL,
    much cheaper than pandas on small frames)."""
    counts = ("views", "carts", "purchases", "removes")
    cols = ", ".join(f"coalesce({c}, 0)::BIGINT AS {c}" for c in counts)
    return f"""
        SELECT * EXCLUDE (views, carts, purchases, removes, revenue), {cols},
               coalesce(revenue, 0)::DOUBLE AS revenue,
               coalesce(carts / nullif(views, 0), 0)::DOUBLE AS cart_rate,
               coalesce(purchases / nullif(carts, 0), 0)::DOUBLE AS purchase_rate,
               coalesce(purchases / nullif(views, 0), 0)::DOUBLE AS view_to_purchase,
               coalesce(removes / nullif(carts, 0), 0)::DOUBLE AS removes_per_cart
        FROM ({inner}) WHERE {where} {f'ORDER BY {order}' if order else ''} {f'LIMIT {int(limit)}' if limit else ''}"""


def funnel_totals(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> dict[str, float]:
    """Event counts per type, revenue and the event-level rates for the filtered events."""
    w, p = where(f)
    cur = con.execute(rated(f"SELECT {_counts_sql()} FROM {cube('daily', f)} WHERE {w}"), p)
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchall()[0]))


def funnel_steps(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """One row per step (view, cart, purchase): events, rate from the previous step, rate from views."""
    t = funnel_totals(con, f)
    counts = [int(t["views"]), int(t["carts"]), int(t["purchases"])]
    return pd.DataFrame({
        "step": list(STEPS), "events": counts,
        "from_previous": [1.0 if counts[0] else 0.0, safe_rate(counts[1], counts[0]), safe_rate(counts[2], counts[1])],
        "from_views": [1.0 if counts[0] else 0.0, safe_rate(counts[1], counts[0]), safe_rate(counts[2], counts[0])],
    })


def funnel_by_month(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Per UTC month (YYYY-MM): counts, revenue and rates, oldest first."""
    w, p = where(f)
    return query(con, rated(f"SELECT strftime(day, '%Y-%m') AS month, {_counts_sql()} FROM {cube('daily', f)} "
                            f"WHERE {w} GROUP BY 1", order="month"), p)


def _check_dim(dim: str) -> None:
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension '{dim}': use one of {', '.join(DIMENSIONS)}")


def funnel_by(con: duckdb.DuckDBPyConnection, f: EdaFilters, dim: str = "category_top", n: int = 10) -> pd.DataFrame:
    """Top ``n`` values of ``dim`` (category_top, category_code or brand) by views, with counts and rates."""
    _check_dim(dim)
    w, p = where(f)
    return query(con, rated(f"SELECT {dim}, {_counts_sql()} FROM {cube('daily', f, dim)} WHERE {w} GROUP BY 1",
                            order=f"views DESC, purchases DESC, {dim}", limit=n), p)


def session_funnel(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Sessions of the slice that view / cart / buy / remove: counts and shares of all sessions."""
    w, p = where(f, sliced=True)
    r = con.execute(f"""
        SELECT coalesce(sum(sessions), 0), coalesce(sum(sessions) FILTER (WHERE has_view), 0),
               coalesce(sum(sessions) FILTER (WHERE has_cart), 0),
               coalesce(sum(sessions) FILTER (WHERE has_purchase), 0),
               coalesce(sum(sessions) FILTER (WHERE has_remove), 0)
        FROM sessions WHERE {w}""", p).fetchall()[0]
    total = int(r[0])
    steps = ["all sessions", "viewed", "added to cart", "purchased", "removed from cart"]
    df = pd.DataFrame({"step": steps, "sessions": [int(x) for x in r]})
    df["share_of_sessions"] = [safe_rate(x, total) for x in df["sessions"]]
    return df


def cart_abandonment(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> dict[str, float]:
    """Sessions with a cart, those that bought, the abandoned ones and the abandonment rate."""
    w, p = where(f, sliced=True)
    carted, bought, removed = con.execute(f"""
        SELECT coalesce(sum(sessions) FILTER (WHERE has_cart), 0),
               coalesce(sum(sessions) FILTER (WHERE has_cart AND has_purchase), 0),
               coalesce(sum(sessions) FILTER (WHERE has_cart AND has_remove), 0)
        FROM sessions WHERE {w}""", p).fetchall()[0]
    carted, bought = int(carted), int(bought)
    return {"cart_sessions": carted, "cart_and_purchase": bought, "abandoned": carted - bought,
            "abandonment_rate": safe_rate(carted - bought, carted), "cart_and_remove": int(removed)}
