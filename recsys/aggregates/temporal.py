"""Temporal aggregates (all UTC): hour of day, day of week, hour x weekday, daily trend, month comparison.

Weekday figures are given both as totals and per calendar day of that weekday in the filtered range, because a
range may hold five Tuesdays and four Sundays.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.aggregates.query import EdaFilters, cube, query, safe_rate, where

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MEASURES = ("events", "views", "carts", "purchases", "revenue")


def _sums_sql() -> str:
    return (f"sum(events) AS events, "
            f"coalesce(sum(events) FILTER (WHERE event_type = '{S.VIEW}'), 0) AS views, "
            f"coalesce(sum(events) FILTER (WHERE event_type = '{S.CART}'), 0) AS carts, "
            f"coalesce(sum(events) FILTER (WHERE event_type = '{S.PURCHASE}'), 0) AS purchases, "
            f"coalesce(sum(price_sum) FILTER (WHERE event_type = '{S.PURCHASE}'), 0) AS revenue")


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("events", "views", "carts", "purchases"):
        df[c] = df[c].fillna(0).astype("int64")
    df["revenue"] = df["revenue"].fillna(0.0).astype("float64")
    df["conversion"] = safe_rate(df["purchases"], df["views"])
    return df


def by_hour(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Hour of day 0-23 (UTC): events, views, carts, purchases, revenue, conversion; every hour present."""
    w, p = where(f, time_col="hour")
    df = query(con, f"SELECT hour(hour) AS hour_utc, {_sums_sql()} FROM {cube('hourly', f)} WHERE {w} GROUP BY 1",
               p)
    df = pd.DataFrame({"hour_utc": range(24)}).merge(df, on="hour_utc", how="left")
    return _finish(df)


def _weekday_days(f: EdaFilters, first: object, last: object) -> pd.Series:
    """How many calendar days of each weekday (0 = Monday) the filtered range covers within the data."""
    start = max(pd.Timestamp(f.start), pd.Timestamp(first)) if f.start else pd.Timestamp(first)
    end = min(pd.Timestamp(f.end), pd.Timestamp(last)) if f.end else pd.Timestamp(last)
    days = pd.date_range(start, end, freq="D") if start <= end else pd.DatetimeIndex([])
    return pd.Series(days.weekday).value_counts().reindex(range(7), fill_value=0)


def by_weekday(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Day of week (Mon-Sun, UTC): totals, number of such days in range, and events/purchases per day."""
    w, p = where(f, time_col="hour")
    df = query(con, f"""SELECT isodow(hour) - 1 AS weekday_no, {_sums_sql()} FROM {cube('hourly', f)} WHERE {w}
                        GROUP BY 1""", p)
    first, last = con.execute("SELECT min(hour)::DATE, max(hour)::DATE FROM hourly_nb").fetchall()[0]
    df = pd.DataFrame({"weekday_no": range(7)}).merge(df, on="weekday_no", how="left")
    df = _finish(df)
    df.insert(1, "weekday", list(WEEKDAYS))
    df["days"] = _weekday_days(f, first, last).to_numpy() if first is not None else 0
    df["events_per_day"] = safe_rate(df["events"], df["days"])
    df["purchases_per_day"] = safe_rate(df["purchases"], df["days"])
    return df


def hour_weekday(con: duckdb.DuckDBPyConnection, f: EdaFilters, measure: str = "events") -> pd.DataFrame:
    """A 7 x 24 matrix (rows Mon..Sun, columns hours 0-23 UTC) of ``measure`` totals."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure '{measure}': use one of {', '.join(MEASURES)}")
    w, p = where(f, time_col="hour")
    df = query(con, f"""SELECT isodow(hour) - 1 AS weekday_no, hour(hour) AS hour_utc, {_sums_sql()}
                        FROM {cube('hourly', f)} WHERE {w} GROUP BY 1, 2""", p)
    m = np.zeros((7, 24))
    if len(df):
        m[df["weekday_no"].to_numpy(int), df["hour_utc"].to_numpy(int)] = df[measure].fillna(0).to_numpy(float)
    return pd.DataFrame(m, index=list(WEEKDAYS), columns=list(range(24)))


def daily_trend(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Per UTC day: events, views, carts, purchases, revenue and conversion (purchases / views)."""
    w, p = where(f, time_col="hour")
    df = query(con, f"""SELECT hour::DATE AS day, {_sums_sql()} FROM {cube('hourly', f)} WHERE {w}
                        GROUP BY 1 ORDER BY 1""", p)
    df["day"] = pd.to_datetime(df["day"])
    return _finish(df)


def month_comparison(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Per UTC month: totals, active days, events and revenue per day, conversion."""
    w, p = where(f, time_col="hour")
    df = query(con, f"""SELECT strftime(hour, '%Y-%m') AS month, count(DISTINCT hour::DATE) AS active_days,
                               {_sums_sql()} FROM {cube('hourly', f)} WHERE {w} GROUP BY 1 ORDER BY 1""", p)
    df = _finish(df)
    df["events_per_day"] = safe_rate(df["events"], df["active_days"])
    df["revenue_per_day"] = safe_rate(df["revenue"], df["active_days"])
    return df
