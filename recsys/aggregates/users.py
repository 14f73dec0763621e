"""User and session aggregates: session length and duration, purchases per user, repeat buyers,
new vs returning users per day, top buyers.

A session's day is the UTC day of its first event in the slice; its duration is last minus first event time.
A repeat buyer bought in at least two different sessions within the date range. A user is new on the UTC day of
their first session in the data (in the slice), returning on later days. Buyer figures come from per-buyer totals
when the date range covers the data, else from per-buyer purchase days summed over the range.
"""
from __future__ import annotations

import duckdb
import pandas as pd

from recsys.aggregates.query import DURATION_LABELS, EVENT_LABELS, EdaFilters, query, safe_rate, where

PURCHASE_BINS = (1, 2, 3, 4, 5, 10)
PURCHASE_LABELS = ("1", "2", "3", "4", "5-9", "10+")
TOP_BY = ("revenue", "purchases")


def session_stats(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> dict[str, float]:
    """Sessions, events per session, mean duration (s), share of one-event sessions, share with a purchase."""
    w, p = where(f, sliced=True)
    n, ev, dur, single, bought = con.execute(f"""
        SELECT coalesce(sum(sessions), 0), coalesce(sum(events), 0), coalesce(sum(duration_s), 0),
               coalesce(sum(sessions) FILTER (WHERE events_bin = 0), 0),
               coalesce(sum(sessions) FILTER (WHERE has_purchase), 0)
        FROM sessions WHERE {w}""", p).fetchall()[0]
    return {"sessions": int(n), "events_per_session": safe_rate(ev, n), "mean_duration_s": safe_rate(dur, n),
            "single_event_share": safe_rate(single, n), "purchase_share": safe_rate(bought, n)}


def _histogram(con: duckdb.DuckDBPyConnection, f: EdaFilters, col: str, labels: tuple[str, ...]) -> pd.DataFrame:
    w, p = where(f, sliced=True)
    df = query(con, f"""SELECT {col} AS bin, sum(sessions) AS sessions,
                               coalesce(sum(sessions) FILTER (WHERE has_purchase), 0) AS buying_sessions
                        FROM sessions WHERE {w} GROUP BY 1""", p)
    out = pd.DataFrame({"bin": range(len(labels))}).merge(df, on="bin", how="left").fillna(0)
    out.insert(0, "bucket", list(labels))
    out[["sessions", "buying_sessions"]] = out[["sessions", "buying_sessions"]].astype("int64")
    out["share"] = safe_rate(out["sessions"], pd.Series(out["sessions"].sum(), index=out.index))
    out["purchase_share"] = safe_rate(out["buying_sessions"], out["sessions"])
    return out.drop(columns="bin")


def events_per_session(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Sessions per events-count bucket (1, 2, ..., 51+): sessions, share, share that bought."""
    return _histogram(con, f, "events_bin", EVENT_LABELS)


def session_durations(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Sessions per duration bucket (0 s, 1-10 s, ..., 1 h+): sessions, share, share that bought."""
    return _histogram(con, f, "duration_bin", DURATION_LABELS)


def _covers_all_days(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> bool:
    """True when the date range holds every day of the data (the per-buyer totals then answer directly)."""
    first, last = con.execute("SELECT min(day), max(day) FROM user_activity").fetchall()[0]
    return first is None or ((f.start is None or f.start <= first) and (f.end is None or f.end >= last))


def _buyers(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> tuple[str, list]:
    """SQL (and parameters) of one row per buyer in range: purchases, purchase sessions, revenue, purchase days."""
    w, p = where(f, sliced=True)
    if _covers_all_days(con, f):
        w, p = where(EdaFilters(category=f.category, brand=f.brand), sliced=True)
        return (f"""SELECT user_id, purchases, purchase_sessions, revenue, purchase_days, first_purchase,
                           last_purchase FROM users WHERE {w}""", p)
    return (f"""SELECT user_id, sum(purchases)::BIGINT AS purchases,
                       sum(purchase_sessions)::BIGINT AS purchase_sessions, sum(revenue) AS revenue,
                       count(*)::BIGINT AS purchase_days, min(day) AS first_purchase, max(day) AS last_purchase
                FROM user_days WHERE {w} GROUP BY user_id""", p)


def purchases_per_user(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Buyers per number of purchases in range (1, 2, 3, 4, 5-9, 10+), with their revenue."""
    sql, p = _buyers(con, f)
    edges = " + ".join(f"(purchases >= {e})::INTEGER" for e in PURCHASE_BINS[1:])
    df = query(con, f"SELECT {edges} AS bin, count(*) AS buyers, sum(revenue) AS revenue FROM ({sql}) GROUP BY 1", p)
    out = pd.DataFrame({"bin": range(len(PURCHASE_LABELS))}).merge(df, on="bin", how="left").fillna(0)
    out.insert(0, "purchases", list(PURCHASE_LABELS))
    out["buyers"] = out["buyers"].astype("int64")
    out["share"] = safe_rate(out["buyers"], pd.Series(out["buyers"].sum(), index=out.index))
    return out.drop(columns="bin")


def repeat_buyers(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> dict[str, float]:
    """Buyers, repeat buyers (purchases in >= 2 sessions), their share of buyers and of revenue."""
    sql, p = _buyers(con, f)
    buyers, repeat, revenue, repeat_revenue = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE purchase_sessions >= 2), coalesce(sum(revenue), 0),
               coalesce(sum(revenue) FILTER (WHERE purchase_sessions >= 2), 0)
        FROM ({sql})""", p).fetchall()[0]
    return {"buyers": int(buyers), "repeat_buyers": int(repeat), "repeat_share": safe_rate(repeat, buyers),
            "revenue": float(revenue), "repeat_revenue_share": safe_rate(repeat_revenue, revenue)}


def new_vs_returning(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Per UTC day: active users, new users (first session in the data that day), returning users, buyers."""
    w, p = where(f, sliced=True)
    df = query(con, f"""SELECT day, active_users, new_users, active_users - new_users AS returning_users, buyers
                        FROM user_activity WHERE {w} ORDER BY day""", p)
    df["day"] = pd.to_datetime(df["day"])
    df["returning_share"] = safe_rate(df["returning_users"], df["active_users"])
    return df


def top_users(con: duckdb.DuckDBPyConnection, f: EdaFilters, by: str = "revenue", n: int = 20) -> pd.DataFrame:
    """The top ``n`` buyers in range by revenue or purchases, with their activity over all days for context."""
    if by not in TOP_BY:
        raise ValueError(f"cannot rank users by '{by}': use one of {', '.join(TOP_BY)}")
    sql, p = _buyers(con, f)
    w, p2 = where(EdaFilters(category=f.category, brand=f.brand), sliced=True)
    df = query(con, f"""
        WITH top AS ({sql} ORDER BY {by} DESC, user_id LIMIT {int(n)})
        SELECT top.*, u.sessions AS sessions_all_days, u.views AS views_all_days, u.carts AS carts_all_days
        FROM top JOIN (SELECT * FROM users WHERE {w}) u USING (user_id)
        ORDER BY {by} DESC, user_id""", p + p2)
    return df
