"""Customers: RFM segments of buyers, their value, their categories, and how concentrated revenue is (Pareto).

- **Reference day**: the last day of the data within the date range. A buyer's *recency* is the number of days
  from their last purchase day to it, *frequency* their orders (sessions with a purchase), *monetary* their
  revenue, all within the date range and the category / brand filter (the EDA's per-buyer totals).
- **Scores 1-5** are quantiles among the buyers: ``1 + floor(5 x share of buyers with a worse value)`` (worse =
  longer since the last purchase, fewer orders, less revenue). Ties share a score, so when most buyers ordered
  once they all get F = 1 and the next order count jumps to a high score.
- **Segments** come from R and F by the first matching rule of :data:`SEGMENTS` (every R x F cell has one).
- **Expected value** (:func:`expected_value`): the segment's observed repeat-order rate (orders after each buyer's
  first, per buyer-day since that first purchase day) kept constant over the horizon, times its average order
  value; shown only when the data spans at least twice the horizon and the segment has enough repeat buyers.
- **Pareto**: the share of revenue from the top 1 / 10 / 20 % of customers or products (the top ceil(p x n)).

The per-buyer totals come from the ``users`` / ``user_days`` tables; ``product_sales`` (day x category x brand x
product, purchases only) is this module's own addition to the aggregates stage.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd

import plotly.graph_objects as go

from recsys import schema as S
from recsys.aggregates.charts import plotly_texts
from recsys.aggregates.query import ALL, EdaFilters, query, where
from recsys.engine import Engine, as_engine
from recsys.aggregates.users import _buyers

PARETO_TOPS = (0.01, 0.10, 0.20)
PARETO_BY = ("customer", "product")
HORIZONS = (30, 90, 180)
MIN_REPEAT_BUYERS = 20  # fewer repeat buyers in a segment: its repeat rate is noise, no value is shown
VALUE_MODEL = ("Model: each buyer keeps ordering at their segment's observed repeat rate (orders after each buyer's "
               "first, divided by the buyer-days from the first purchase day to the reference day, inclusive) for "
               "the whole horizon, with no churn and no seasonality; expected value = expected orders × the "
               "segment's average order value. A simple run-rate, not a fitted lifetime model: it overstates "
               "segments that are drifting away.")


class Segment(NamedTuple):
    name: str
    r: tuple[int, int]  # inclusive R score range
    f: tuple[int, int]  # inclusive F score range
    meaning: str


SEGMENTS = (
    Segment("champions", (5, 5), (4, 5), "bought very recently and often"),
    Segment("loyal", (3, 4), (4, 5), "order often, fairly recently"),
    Segment("can't lose", (1, 2), (5, 5), "were among the most frequent, not seen for long"),
    Segment("at risk", (1, 2), (3, 4), "ordered often, not seen for long"),
    Segment("potential loyalists", (4, 5), (2, 3), "recent, a few orders"),
    Segment("new", (5, 5), (1, 1), "first and only order very recently"),
    Segment("promising", (4, 4), (1, 1), "one recent order"),
    Segment("need attention", (3, 3), (3, 3), "middling recency and frequency"),
    Segment("about to sleep", (3, 3), (1, 2), "few orders, recency slipping"),
    Segment("lost", (1, 1), (1, 1), "one order, the longest ago"),
    Segment("hibernating", (1, 2), (1, 2), "few orders, long ago (R 1 F 1 is lost: the first match wins)"),
)
SEGMENT_NAMES = tuple(s.name for s in SEGMENTS)


def segment_of(r: int, f: int) -> str:
    """The segment of an R and F score (first matching rule)."""
    for s in SEGMENTS:
        if s.r[0] <= r <= s.r[1] and s.f[0] <= f <= s.f[1]:
            return s.name
    raise ValueError(f"no segment for R={r}, F={f}: scores run 1-5")


def _rng(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def segment_rules() -> pd.DataFrame:
    """The rules as a table: segment, R, F, meaning (first match wins, in this order)."""
    return pd.DataFrame({"segment": [s.name for s in SEGMENTS], "R score": [_rng(*s.r) for s in SEGMENTS],
                         "F score": [_rng(*s.f) for s in SEGMENTS], "meaning": [s.meaning for s in SEGMENTS]})


def _segment_case_sql() -> str:
    arms = " ".join(f"WHEN r BETWEEN {s.r[0]} AND {s.r[1]} AND f BETWEEN {s.f[0]} AND {s.f[1]} "
                    f"THEN '{s.name.replace(chr(39), chr(39) * 2)}'" for s in SEGMENTS)
    return f"CASE {arms} END"


def quantile_scores(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """1 + floor(5 x share of the values that are worse), ties sharing a score (the SQL's rule, for tests)."""
    v = values if higher_is_better else -values
    worse = v.rank(method="min") - 1
    return (1 + np.floor(5 * worse / len(v))).astype("int64")


# ---- the aggregates-stage table -----------------------------------------------------------------------------

def write_product_sales(con: duckdb.DuckDBPyConnection | Engine, out_path: str) -> int:
    """Write ``product_sales.parquet`` (UTC day x top category x brand x product -> purchases, revenue)."""
    top = f"split_part({S.CATEGORY_CODE}, '.', 1)"
    return as_engine(con).copy(f"""SELECT event_time::DATE AS day, {top} AS category_top, brand, product_id,
                                          count(*)::BIGINT AS purchases, {S.money_sum_sql('price')} AS revenue
                                   FROM events WHERE event_type = '{S.PURCHASE}' GROUP BY ALL
                                   ORDER BY brand, category_top, day, product_id""", Path(out_path))


# ---- RFM ------------------------------------------------------------------------------------------------------

def data_span(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> dict[str, Any]:
    """The days the figures cover: first and reference (last) day of the data within the range, and their count."""
    first, last = con.execute(f"SELECT min(day), max(day) FROM user_activity WHERE category_top = '{ALL}' "
                              f"AND brand = '{ALL}'").fetchall()[0]
    if first is None:
        return {"first": None, "reference": None, "days": 0}
    first, last = max(first, f.start) if f.start else first, min(last, f.end) if f.end else last
    return {"first": first, "reference": last, "days": max((last - first).days + 1, 0)}


def _scored_sql(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> tuple[str, list[Any]]:
    """SQL of one row per buyer: user_id, recency_days, orders, purchases, revenue, first/last purchase, r, f, m,
    segment."""
    sql, p = _buyers(con, f)
    ref = data_span(con, f)["reference"]
    return (f"""
        WITH b AS ({sql}),
             b2 AS (SELECT user_id, (?::DATE - last_purchase::DATE)::BIGINT AS recency_days,
                           purchase_sessions AS orders, purchases, revenue, first_purchase, last_purchase,
                           (?::DATE - first_purchase::DATE + 1)::BIGINT AS exposure_days FROM b),
             k AS (SELECT *, count(*) OVER () AS n,
                          rank() OVER (ORDER BY recency_days DESC) AS r_rank,
                          rank() OVER (ORDER BY orders) AS f_rank,
                          rank() OVER (ORDER BY revenue) AS m_rank FROM b2),
             s AS (SELECT *, (1 + floor(5 * (r_rank - 1) / n))::INTEGER AS r,
                          (1 + floor(5 * (f_rank - 1) / n))::INTEGER AS f,
                          (1 + floor(5 * (m_rank - 1) / n))::INTEGER AS m FROM k)
        SELECT user_id, recency_days, orders, purchases, revenue, first_purchase, last_purchase, exposure_days,
               r, f, m, {_segment_case_sql()} AS segment FROM s""", p + [ref, ref])


def rfm(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """One row per buyer: recency (days), orders, revenue, days since the first purchase (inclusive), R, F, M
    scores and segment. The page computes it once per filter and derives every segment figure from it."""
    sql, p = _scored_sql(con, f)
    df = query(con, f"SELECT user_id, recency_days, orders, revenue, exposure_days, r, f, m, segment FROM ({sql}) "
                    "ORDER BY user_id", p)
    return df.astype({"r": "int8", "f": "int8", "m": "int8", "segment": "category"})


def expected_value(orders: float, repeat_orders: float, exposure_days: float, revenue: float, repeat_buyers: int,
                   span_days: int, horizon: int) -> tuple[float | None, float | None, str]:
    """Expected orders and value per buyer over ``horizon`` days, or None and the reason when the data cannot
    say (see :data:`VALUE_MODEL`)."""
    if span_days < 2 * horizon:
        return None, None, f"data span {span_days} days < 2 × {horizon}"
    if repeat_buyers < MIN_REPEAT_BUYERS:
        return None, None, f"{repeat_buyers} repeat buyers < {MIN_REPEAT_BUYERS}"
    if exposure_days <= 0 or orders <= 0:
        return None, None, "no observed days after a first purchase"
    expected = repeat_orders / exposure_days * horizon
    return expected, expected * revenue / orders, ""


def summarize(buyers: pd.DataFrame, span_days: int, horizon: int = 90) -> pd.DataFrame:
    """Per segment (every rule, in order) of :func:`rfm`'s buyers: its rule, buyers, shares of buyers and revenue,
    mean recency / orders / revenue, average order value, repeat buyers and the expected value over ``horizon``
    days, or why the data cannot support one (``span_days``: the days the figures cover)."""
    b = buyers.assign(repeat=buyers["orders"] >= 2, repeat_orders=buyers["orders"] - 1)
    g = b.groupby("segment", observed=True)  # on the category codes: a string copy of every buyer took 0.3 s at Oct+Nov
    df = pd.DataFrame({"buyers": g.size(), "revenue": g["revenue"].sum(), "orders": g["orders"].sum(),
                       "mean_recency_days": g["recency_days"].mean(), "mean_orders": g["orders"].mean(),
                       "repeat_buyers": g["repeat"].sum(), "repeat_orders": g["repeat_orders"].sum(),
                       "exposure_days": g["exposure_days"].sum()}).rename_axis("segment").reset_index()
    df["segment"] = df["segment"].astype(str)
    out = segment_rules().merge(df, on="segment", how="left")
    ints = ["buyers", "orders", "repeat_buyers", "repeat_orders", "exposure_days"]
    out[ints] = out[ints].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0).astype(float)
    out["buyer_share"] = out["buyers"] / max(int(out["buyers"].sum()), 1)
    total = float(out["revenue"].sum())
    out["revenue_share"] = out["revenue"] / total if total else 0.0
    out["mean_revenue"] = (out["revenue"] / out["buyers"].where(out["buyers"] > 0)).astype(float)
    out["avg_order_value"] = (out["revenue"] / out["orders"].where(out["orders"] > 0)).astype(float)
    ev = [expected_value(r.orders, r.repeat_orders, r.exposure_days, r.revenue, r.repeat_buyers, span_days, horizon)
          if r.buyers else (None, None, "no buyers") for r in out.itertuples()]
    out[f"expected_orders_{horizon}d"] = [np.nan if e[0] is None else e[0] for e in ev]
    out[f"expected_value_{horizon}d"] = [np.nan if e[1] is None else e[1] for e in ev]
    out["value_note"] = [e[2] for e in ev]
    return out[["segment", "R score", "F score", "meaning", "buyers", "buyer_share", "revenue", "revenue_share",
                "mean_recency_days", "mean_orders", "mean_revenue", "avg_order_value", "repeat_buyers",
                f"expected_orders_{horizon}d", f"expected_value_{horizon}d", "value_note"]]


def segment_summary(con: duckdb.DuckDBPyConnection, f: EdaFilters, horizon: int = 90) -> pd.DataFrame:
    """:func:`summarize` of the buyers within the filters."""
    return summarize(rfm(con, f), data_span(con, f)["days"], horizon)


def grid(buyers: pd.DataFrame) -> pd.DataFrame:
    """Buyers and revenue per R x F score cell of :func:`rfm`'s buyers (all 25 cells), with each cell's segment."""
    df = buyers.groupby(["r", "f"]).agg(buyers=("user_id", "size"), revenue=("revenue", "sum")).reset_index()
    out = pd.DataFrame([(r, fs) for r in range(1, 6) for fs in range(1, 6)], columns=["r", "f"])
    out = out.merge(df.astype({"r": "int64", "f": "int64"}), on=["r", "f"], how="left")
    out["buyers"] = out["buyers"].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0).astype(float)
    out["segment"] = [segment_of(r, fs) for r, fs in zip(out["r"], out["f"])]
    return out


def rf_grid(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """:func:`grid` of the buyers within the filters."""
    return grid(rfm(con, f))


def segment_top(con: duckdb.DuckDBPyConnection, f: EdaFilters, segment: str, n: int = 10) -> pd.DataFrame:
    """The segment's top-level categories (its brands when a category is chosen) by revenue within the filters:
    value, buyers (of the segment who bought there), revenue, share of the segment's revenue."""
    if segment not in SEGMENT_NAMES:
        raise ValueError(f"unknown segment '{segment}': use one of {', '.join(SEGMENT_NAMES)}")
    dim = "brand" if f.category else "category_top"
    sql, p = _scored_sql(con, f)
    # the per-value slices: (category, brand filter) per category, or (category, brand) per brand of the category
    table, w, p2 = _slices(con, f, dim)
    df = query(con, f"""
        WITH seg AS (SELECT user_id, revenue FROM ({sql}) WHERE segment = ?),
             v AS (SELECT {dim} AS value, user_id, sum(revenue) AS revenue FROM {table} WHERE {w} GROUP BY ALL)
        SELECT value, count(*) AS buyers, sum(v.revenue) AS revenue,
               sum(v.revenue) / nullif((SELECT sum(revenue) FROM seg), 0) AS share_of_segment_revenue
        FROM v JOIN seg USING (user_id)
        GROUP BY value ORDER BY revenue DESC, buyers DESC, value LIMIT {int(n)}""", p + [segment] + p2)
    df["share_of_segment_revenue"] = df["share_of_segment_revenue"].fillna(0.0)
    return df.rename(columns={"value": dim})


def _slices(con: duckdb.DuckDBPyConnection, f: EdaFilters, dim: str) -> tuple[str, str, list[Any]]:
    """Table and WHERE of the per-buyer rows of every value of ``dim`` within the filters."""
    from recsys.aggregates.users import _covers_all_days
    table = "users" if _covers_all_days(con, f) else "user_days"
    clauses, params = [], []
    if table == "user_days":
        w, params = where(EdaFilters(f.start, f.end))
        clauses.append(w)
    if dim == "brand":
        clauses += ["category_top = ?", "brand <> ?"] + (["brand = ?"] if f.brand else [])
        params += [f.category, ALL] + ([f.brand] if f.brand else [])
    else:
        clauses += ["category_top <> ?", "brand = ?"]
        params += [ALL, f.brand or ALL]
    return table, " AND ".join(clauses), params


# ---- Pareto ---------------------------------------------------------------------------------------------------

def revenues(con: duckdb.DuckDBPyConnection, f: EdaFilters, by: str = "customer") -> np.ndarray:
    """Revenue per customer (buyer) or per product within the filters, as an array."""
    if by not in PARETO_BY:
        raise ValueError(f"cannot rank revenue by '{by}': use one of {', '.join(PARETO_BY)}")
    if by == "customer":
        sql, p = _buyers(con, f)
        sql = f"SELECT revenue FROM ({sql})"
    else:
        w, p = where(f)
        sql = f"SELECT sum(revenue) AS revenue FROM product_sales WHERE {w} GROUP BY product_id"
    return con.execute(sql, p).fetchnumpy()["revenue"].astype(float)


def pareto_shares(values: np.ndarray, tops: tuple[float, ...] = PARETO_TOPS) -> pd.DataFrame:
    """Share of the total from the top ceil(p x n) values for each p: top, count, revenue, revenue_share."""
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    total = float(v.sum())
    rows = []
    for p in tops:
        k = min(len(v), math.ceil(round(p * len(v), 9))) if len(v) else 0
        rev = float(v[:k].sum())
        rows.append({"top": f"top {p:.0%}", "count": k, "revenue": rev, "revenue_share": rev / total if total else 0.0})
    return pd.DataFrame(rows)


def pareto_curve(values: np.ndarray, points: int = 200) -> pd.DataFrame:
    """The cumulative share of revenue against the share of customers/products (largest first), ~``points``
    points plus the origin."""
    v = np.sort(np.asarray(values, dtype=float))[::-1]
    n, total = len(v), float(v.sum())
    if not n or not total:
        return pd.DataFrame({"share_of_items": [], "share_of_revenue": []})
    cum = np.cumsum(v) / total
    idx = np.unique(np.linspace(1, n, min(n, points)).round().astype(int))
    return pd.DataFrame({"share_of_items": np.r_[0.0, idx / n], "share_of_revenue": np.r_[0.0, cum[idx - 1]]})


def pareto(con: duckdb.DuckDBPyConnection, f: EdaFilters, by: str = "customer") -> dict[str, Any]:
    """The Pareto curve and the top 1 / 10 / 20 % shares of revenue by customer or product, and the count."""
    v = revenues(con, f, by)
    return {"n": int(len(v)), "curve": pareto_curve(v), "shares": pareto_shares(v)}


# ---- figures --------------------------------------------------------------------------------------------------

def rf_figure(grid: pd.DataFrame, by: str = "buyers") -> go.Figure:
    """R score x F score heatmap of buyers or revenue, each cell's segment in the text and hover."""
    if by not in ("buyers", "revenue"):
        raise ValueError(f"cannot colour by '{by}': use buyers or revenue")
    g = grid.sort_values(["r", "f"])
    z = g.pivot(index="r", columns="f", values=by).to_numpy().tolist()
    other = "revenue" if by == "buyers" else "buyers"
    seg = g.pivot(index="r", columns="f", values="segment").to_numpy()
    oth = g.pivot(index="r", columns="f", values=other).to_numpy()
    fmt = (lambda v: f"{v:,.0f}") if by == "buyers" else (lambda v: f"${v:,.0f}")
    text = [[f"{s}<br>{fmt(v)}" for s, v in zip(srow, zrow)] for srow, zrow in zip(seg, z)]
    trace = {"type": "heatmap", "x": [1, 2, 3, 4, 5], "y": [1, 2, 3, 4, 5], "z": z, "text": text,
             "texttemplate": "%{text}", "colorscale": "Greens", "customdata": oth.tolist(),
             "colorbar": {"title": {"text": by}},
             "hovertemplate": f"R %{{y}} · F %{{x}}: %{{z:,.0f}} {by} (%{{customdata:,.0f}} {other})<extra></extra>"}
    return go.Figure({"data": [trace], "layout": {
        "title": {"text": f"{by.capitalize()} per recency (R) and frequency (F) score"},
        "xaxis": {"title": {"text": "F score (5 = most orders)"}, "dtick": 1},
        "yaxis": {"title": {"text": "R score (5 = most recent)"}, "dtick": 1}}})


def pareto_figure(curve: pd.DataFrame, by: str = "customer") -> go.Figure:
    """Cumulative share of revenue against the share of customers or products, largest first."""
    x, y = curve["share_of_items"].tolist(), curve["share_of_revenue"].tolist()
    return go.Figure({"data": [
        {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": "revenue", "fill": "tozeroy",
         "hovertemplate": f"top %{{x:.1%}} of {by}s: %{{y:.1%}} of revenue<extra></extra>"},
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "equal shares",
         "line": {"dash": "dot", "color": "grey"}, "hoverinfo": "skip"}],
        "layout": {"title": {"text": f"Share of revenue from the top {by}s"},
                   "xaxis": {"title": {"text": f"share of {by}s (most revenue first)"}, "tickformat": ".0%"},
                   "yaxis": {"title": {"text": "share of revenue"}, "tickformat": ".0%"}}})


def top_figure(top: pd.DataFrame, dim: str, segment: str) -> go.Figure:
    """The segment's top categories or brands by revenue (store strings escaped for Plotly)."""
    return go.Figure({"data": [{"type": "bar", "orientation": "h", "y": plotly_texts(top[dim].astype(str)),
                                "x": top["revenue"].tolist(), "customdata": top["buyers"].tolist(),
                                "hovertemplate": "%{y}: $%{x:,.0f} from %{customdata:,} buyers<extra></extra>"}],
                      "layout": {"title": {"text": f"Revenue of {segment} by {dim.replace('_', ' ')}"},
                                 "yaxis": {"autorange": "reversed", "type": "category"},
                                 "xaxis": {"title": {"text": "revenue ($)"}}}})
