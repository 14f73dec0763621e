"""Cohort retention: users grouped by the week or month of their first event (or first purchase), and the share of
each cohort active (or buying) in every later period.

The aggregates stage precomputes one small count table, ``retention``: slice (all / top-level category / brand /
both, as the other slice tables) x grain (week, month) x basis (first event, first purchase) x cohort x period ->
active users, buying users. A page query filters a few hundred rows of it; it never touches users or events.

- A user's activity is the UTC start day of each of their sessions (the EDA's session day); weeks start on Monday.
- With a category or brand filter a user's cohort is their first period with an event (a purchase) *there*, and
  only their events there count as activity: "of the users who first looked at *samsung* in week W, the share who
  came back to *samsung* in week W+k".
- The date range picks the cohorts (their first period starts in it) and cuts the periods at its end, both widened
  to whole weeks / months. A cohort is of users new *in the data*: the first cohort also holds everyone already
  active before the data starts.
- The period holding the data's last day is partial when the data ends before that period does; the average curve
  leaves partial periods out.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from recsys.aggregates.query import ALL, EdaFilters, query
from recsys.engine import DUCKDB, Dialect, Engine, as_engine

GRAINS = ("week", "month")
BASES = ("first_event", "first_purchase")
MEASURES = ("active", "buying")
BASIS_LABELS = {"first_event": "first event", "first_purchase": "first purchase"}
MEASURE_LABELS = {"active": "active (any event)", "buying": "buying"}


# ---- the aggregates-stage table -----------------------------------------------------------------------------

def _period_index_sql(grain: str, cohort: str, period: str, d: Dialect = DUCKDB) -> str:
    if grain == "week":
        return f"({d.idiv(d.days_between(cohort, period), 7)})::SMALLINT"
    return f"((year({period}) - year({cohort})) * 12 + month({period}) - month({cohort}))::SMALLINT"


def retention_sql(grain: str, days_table: str = "ud", d: Dialect = DUCKDB) -> str:
    """The ``retention`` rows of one grain from a per-slice user-day table (category_top, brand, user_id, day,
    bought) and its first-day table ``ret_first`` (category_top, brand, user_id, first_event, first_purchase)."""
    if grain not in GRAINS:
        raise ValueError(f"unknown grain '{grain}': use one of {', '.join(GRAINS)}")
    g = f"'{grain}'"
    measures = "count(*)::BIGINT AS active_users, count(*) FILTER (WHERE bought)::BIGINT AS buying_users"
    return f"""
        WITH up AS (SELECT category_top, brand, user_id, date_trunc({g}, day)::DATE AS p, bool_or(bought) AS bought
                    FROM {days_table} GROUP BY ALL),
             j AS (SELECT up.*, date_trunc({g}, f.first_event)::DATE AS ce, date_trunc({g}, f.first_purchase)::DATE AS cp
                   FROM up JOIN {FIRST_TABLE} f USING (category_top, brand, user_id))
        SELECT category_top, brand, {g} AS grain, 'first_event' AS basis, ce AS cohort,
               {_period_index_sql(grain, 'ce', 'p', d)} AS period, {measures}
        FROM j GROUP BY ALL
        UNION ALL
        SELECT category_top, brand, {g} AS grain, 'first_purchase' AS basis, cp AS cohort,
               {_period_index_sql(grain, 'cp', 'p', d)} AS period, {measures}
        FROM j WHERE cp IS NOT NULL AND p >= cp GROUP BY ALL"""


FIRST_TABLE = "ret_first"


def first_days_sql(days_table: str = "ud") -> str:
    """Each slice-user's first day with an event and first day with a purchase, from the user-day table: what
    ``retention_sql`` joins as ``ret_first`` (and the stage's new-user counts read)."""
    return f"""SELECT category_top, brand, user_id, min(day) AS first_event,
                      min(day) FILTER (WHERE bought) AS first_purchase
               FROM {days_table} GROUP BY ALL"""


def write_retention(con: duckdb.DuckDBPyConnection | Engine, out_path: str, days_table: str = "ud",
                    first_built: bool = False) -> int:
    """Write ``retention.parquet`` from the stage's per-slice user-day table; returns its row count. With
    ``first_built`` the caller has made table ``ret_first`` (:func:`first_days_sql`) and drops it."""
    engine = as_engine(con)
    if not first_built:
        engine.table(FIRST_TABLE, first_days_sql(days_table))
    body = " UNION ALL ".join(f"SELECT * FROM ({retention_sql(g, days_table, engine.dialect)})" for g in GRAINS)
    rows = engine.copy(f"SELECT * FROM ({body}) ORDER BY category_top, brand, grain, basis, cohort, period",
                       Path(out_path))
    if not first_built:
        engine.drop(FIRST_TABLE)
    return rows


# ---- queries --------------------------------------------------------------------------------------------------

def _check(grain: str, basis: str, measure: str) -> None:
    for value, allowed, what in ((grain, GRAINS, "grain"), (basis, BASES, "basis"), (measure, MEASURES, "measure")):
        if value not in allowed:
            raise ValueError(f"unknown {what} '{value}': use one of {', '.join(allowed)}")


def period_start(grain: str, day: dt.date) -> dt.date:
    """The first day of the week (Monday) or month holding ``day``."""
    return day - dt.timedelta(days=day.weekday()) if grain == "week" else day.replace(day=1)


def period_end(grain: str, start: dt.date) -> dt.date:
    """The last day of the period starting on ``start``."""
    if grain == "week":
        return start + dt.timedelta(days=6)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def periods_between(grain: str, first: dt.date, later: dt.date) -> int:
    """How many periods after the one starting on ``first`` the period starting on ``later`` is."""
    if grain == "week":
        return (later - first).days // 7
    return (later.year - first.year) * 12 + later.month - first.month


def _shift(grain: str, start: dt.date, k: int) -> dt.date:
    if grain == "week":
        return start + dt.timedelta(days=7 * k)
    m = start.month - 1 + k
    return dt.date(start.year + m // 12, m % 12 + 1, 1)


def _data_days(con: duckdb.DuckDBPyConnection) -> tuple[dt.date | None, dt.date | None]:
    first, last = con.execute(
        f"SELECT min(day), max(day) FROM user_activity WHERE category_top = '{ALL}' AND brand = '{ALL}'").fetchall()[0]
    return first, last


def cohorts(con: duckdb.DuckDBPyConnection, f: EdaFilters, grain: str = "week", basis: str = "first_event",
            measure: str = "active") -> pd.DataFrame:
    """One row per cohort x period the data reaches: cohort, period, period_start, cohort_size, users (active or
    buying in that period), share (of the cohort), partial (the period runs past the data's last day)."""
    _check(grain, basis, measure)
    cols = ["cohort", "period", "period_start", "cohort_size", "users", "share", "partial"]
    _, last = _data_days(con)
    if last is None:
        return pd.DataFrame(columns=cols)
    stop = min(f.end, last) if f.end else last
    clauses, params = ["category_top = ?", "brand = ?", "grain = ?", "basis = ?", "cohort <= ?"], \
        [f.category or ALL, f.brand or ALL, grain, basis, period_start(grain, stop)]
    if f.start:
        clauses.append("cohort >= ?")
        params.append(period_start(grain, f.start))
    col = "active_users" if measure == "active" else "buying_users"
    df = query(con, f"""SELECT cohort, period, {col} AS users, active_users FROM retention
                        WHERE {' AND '.join(clauses)} ORDER BY cohort, period""", params)
    if df.empty:
        return pd.DataFrame(columns=cols)
    return _grid(df, grain, period_start(grain, stop), last)[cols]


def _grid(df: pd.DataFrame, grain: str, last_start: dt.date, last_day: dt.date) -> pd.DataFrame:
    """Every reachable cohort x period (0 users where nobody was active), with sizes, shares and partial flags."""
    df["cohort"] = pd.to_datetime(df["cohort"]).dt.date
    sizes = df[df["period"] == 0].set_index("cohort")["active_users"]
    rows = [(c, k) for c in sizes.index for k in range(periods_between(grain, c, last_start) + 1)]
    grid = pd.DataFrame(rows, columns=["cohort", "period"]).astype({"period": "int64"})
    grid = grid.merge(df[["cohort", "period", "users"]].astype({"period": "int64"}), how="left",
                      on=["cohort", "period"])
    grid["users"] = grid["users"].fillna(0).astype("int64")
    grid["cohort_size"] = grid["cohort"].map(sizes).astype("int64")
    grid["share"] = grid["users"] / grid["cohort_size"]
    grid["period_start"] = [_shift(grain, c, k) for c, k in zip(grid["cohort"], grid["period"])]
    grid["partial"] = [period_end(grain, s) > last_day for s in grid["period_start"]]
    return grid


def cohort_sizes(long: pd.DataFrame) -> pd.DataFrame:
    """Cohort, its size and the periods it is followed for (complete ones)."""
    if long.empty:
        return pd.DataFrame(columns=["cohort", "users", "complete_periods"])
    g = long.groupby("cohort", sort=True)
    out = pd.DataFrame({"users": g["cohort_size"].first(),
                        "complete_periods": g["partial"].apply(lambda s: int((~s).sum()))}).reset_index()
    return out


def retention_matrix(long: pd.DataFrame) -> pd.DataFrame:
    """Cohorts as rows (with their size), periods 0, 1, ... as columns holding shares (NaN: not reached yet)."""
    if long.empty:
        return pd.DataFrame(columns=["cohort", "users"])
    m = long.pivot(index="cohort", columns="period", values="share").sort_index()
    m.columns = [f"period {int(c)}" for c in m.columns]
    sizes = long.groupby("cohort")["cohort_size"].first()
    return m.reset_index().merge(sizes.rename("users").reset_index(), on="cohort")[
        ["cohort", "users", *m.columns]]


def curve_lengths(long: pd.DataFrame) -> list[int]:
    """The curve lengths on offer: 0 .. the most complete periods any cohort has (0 when none is complete)."""
    reach = cohort_sizes(long)["complete_periods"]
    return list(range(int(reach.max()))) if len(reach) and reach.max() > 0 else []


def average_curve(long: pd.DataFrame, last_period: int) -> pd.DataFrame:
    """The cohort-size weighted retention in periods 0..``last_period``, over the cohorts whose periods up to
    ``last_period`` are all complete (the same users in every point): period, share, users, cohort_users, cohorts."""
    cols = ["period", "share", "users", "cohort_users", "cohorts"]
    reach = cohort_sizes(long)
    counted = reach.loc[reach["complete_periods"] > last_period, "cohort"]
    sub = long[long["cohort"].isin(counted) & (long["period"] <= last_period)]
    if sub.empty:
        return pd.DataFrame(columns=cols)
    g = sub.groupby("period")
    out = pd.DataFrame({"users": g["users"].sum(), "cohort_users": g["cohort_size"].sum(),
                        "cohorts": g["cohort"].nunique()}).reset_index()
    out["share"] = out["users"] / out["cohort_users"]
    return out[cols]


# ---- figures --------------------------------------------------------------------------------------------------

def heatmap_figure(long: pd.DataFrame, grain: str, basis: str, measure: str) -> go.Figure:
    """Cohort x period heatmap of shares, cohort sizes in the row labels; partial periods marked in the hover."""
    m = long.pivot(index="cohort", columns="period", values="share").sort_index()
    users = long.pivot(index="cohort", columns="period", values="users").reindex(index=m.index, columns=m.columns)
    part = long.pivot(index="cohort", columns="period", values="partial").reindex(index=m.index, columns=m.columns)
    sizes = long.groupby("cohort")["cohort_size"].first().reindex(m.index)
    y = [f"{c} (n={n:,})" for c, n in zip(m.index, sizes)]
    z = m.to_numpy(dtype=float)
    note = np.where(part.fillna(False).to_numpy(dtype=bool), " (partial period)", "")
    custom = np.dstack([users.fillna(0).to_numpy(dtype=float), note]).tolist()
    text = [[f"{v:.0%}" if v == v else "" for v in row] for row in z]
    trace = {"type": "heatmap", "z": [[None if v != v else v for v in row] for row in z],
             "x": [str(int(c)) for c in m.columns], "y": y, "colorscale": "Blues", "zmin": 0, "zmax": 1,
             "text": text, "texttemplate": "%{text}", "customdata": custom,
             "colorbar": {"title": {"text": "share"}, "tickformat": ".0%"},
             "hovertemplate": f"cohort %{{y}}<br>{grain} %{{x}}%{{customdata[1]}}: %{{z:.1%}} "
                              f"(%{{customdata[0]:,.0f}} users)<extra></extra>"}
    title = (f"Share of each cohort {MEASURE_LABELS[measure]} per {grain} after its {BASIS_LABELS[basis]}")
    return go.Figure({"data": [trace], "layout": {
        "title": {"text": title}, "xaxis": {"title": {"text": f"{grain}s since the cohort's {grain}"},
                                            "type": "category", "side": "top"},
        "yaxis": {"title": {"text": f"cohort ({grain} starting, UTC)"}, "autorange": "reversed",
                  "type": "category"}}})


def curve_figure(curve: pd.DataFrame, grain: str, measure: str) -> go.Figure:
    """The average retention curve (cohort-size weighted)."""
    n = int(curve["cohorts"].iloc[0]) if len(curve) else 0
    trace = {"type": "scatter", "mode": "lines+markers+text", "x": curve["period"].tolist(),
             "y": curve["share"].tolist(), "text": [f"{v:.1%}" for v in curve["share"]], "textposition": "top center",
             "customdata": curve[["users", "cohort_users"]].to_numpy().tolist(),
             "hovertemplate": f"{grain} %{{x}}: %{{y:.2%}} (%{{customdata[0]:,}} of %{{customdata[1]:,}} "
                              "users)<extra></extra>"}
    return go.Figure({"data": [trace], "layout": {
        "title": {"text": f"Average retention ({MEASURE_LABELS[measure]}) over {n} cohorts, weighted by size"},
        "xaxis": {"title": {"text": f"{grain}s since the cohort's {grain}"}, "dtick": 1},
        "yaxis": {"title": {"text": "share of the cohorts' users"}, "tickformat": ".0%", "rangemode": "tozero"}}})
