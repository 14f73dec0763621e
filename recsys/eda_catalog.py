"""Brand and category aggregates: top-N rankings, the category_code tree, prices per category, price bands.

Prices are those of viewed items (each view counts once), so a distribution shows what shoppers look at;
prices of 0 are left out of price statistics but counted in every funnel figure.
"""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.eda import PRICE_BAND_LABELS, AggregateParams, EdaFilters, query, where
from recsys.eda_funnel import DIMENSIONS, _counts_sql, add_rates

RANK_BY = ("views", "purchases", "revenue", "view_to_purchase")


def top_n(con: duckdb.DuckDBPyConnection, f: EdaFilters, dim: str = "brand", by: str = "revenue", n: int = 15,
          min_views: int = 0) -> pd.DataFrame:
    """Top ``n`` values of ``dim`` ranked by ``by``; conversion rankings only count values with >= min_views."""
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension '{dim}': use one of {', '.join(DIMENSIONS)}")
    if by not in RANK_BY:
        raise ValueError(f"cannot rank by '{by}': use one of {', '.join(RANK_BY)}")
    w, p = where(f)
    df = add_rates(query(con, f"SELECT {dim}, {_counts_sql()} FROM daily WHERE {w} GROUP BY 1", p))
    if by == "view_to_purchase":
        df = df[df["views"] >= max(int(min_views), 1)]
    df = df.sort_values([by, "views", dim], ascending=[False, False, True], kind="stable").head(int(n))
    return df.reset_index(drop=True)


def category_tree(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Every node of the category_code hierarchy (a.b.c -> a, a.b, a.b.c): id, parent, label, depth and funnel."""
    w, p = where(f)
    leaves = add_rates(query(con, f"SELECT category_code, {_counts_sql()} FROM daily WHERE {w} GROUP BY 1", p))
    if leaves.empty:
        return pd.DataFrame(columns=["id", "parent", "label", "depth", "views", "carts", "purchases", "removes",
                                     "revenue", "cart_rate", "purchase_rate", "view_to_purchase",
                                     "removes_per_cart"])
    parts = leaves["category_code"].str.split(".")
    rows = []
    for depth in range(1, int(parts.str.len().max()) + 1):
        has = parts.str.len() >= depth
        node = parts[has].str[:depth].str.join(".")
        g = leaves[has].assign(id=node.to_numpy()).groupby("id", sort=True)[
            ["views", "carts", "purchases", "removes", "revenue"]].sum().reset_index()
        g["parent"] = g["id"].str.rsplit(".", n=1).str[0] if depth > 1 else ""
        g["label"] = g["id"].str.split(".").str[-1]
        g["depth"] = depth
        rows.append(g)
    tree = add_rates(pd.concat(rows, ignore_index=True))
    return tree[["id", "parent", "label", "depth", *[c for c in tree.columns
                                                     if c not in ("id", "parent", "label", "depth")]]]


def _weighted_quantiles(edges_lo: np.ndarray, edges_hi: np.ndarray, w: np.ndarray, qs: list[float]) -> list[float]:
    """Quantiles of a histogram (log-linear interpolation inside a bin)."""
    cum = np.cumsum(w) / w.sum()
    out = []
    for q in qs:
        i = int(np.searchsorted(cum, q, side="left"))
        i = min(i, len(w) - 1)
        prev = cum[i - 1] if i else 0.0
        frac = (q - prev) / (cum[i] - prev) if cum[i] > prev else 0.5
        out.append(float(edges_lo[i] * (edges_hi[i] / edges_lo[i]) ** frac))
    return out


def price_distribution(con: duckdb.DuckDBPyConnection, f: EdaFilters, n: int = 10, dim: str = "category_code",
                       bins_per_decade: int = AggregateParams().price_bins_per_decade) -> pd.DataFrame:
    """Per top-``n`` ``dim`` value (by views): views with a price, p5 / q1 / median / q3 / p95 of viewed prices."""
    w, p = where(f)
    df = query(con, f"""SELECT {dim} AS key, price_bin, sum(events) AS views FROM daily
                        WHERE {w} AND event_type = '{S.VIEW}' AND price_bin IS NOT NULL GROUP BY 1, 2""", p)
    cols = ["key", "views", "p5", "q1", "median", "q3", "p95"]
    if df.empty:
        return pd.DataFrame(columns=cols).rename(columns={"key": dim})
    top = df.groupby("key")["views"].sum().sort_values(ascending=False, kind="stable").head(int(n)).index
    out = []
    for key in top:
        h = df[df["key"] == key].sort_values("price_bin")
        b = h["price_bin"].to_numpy(float)
        lo, hi = 10 ** (b / bins_per_decade), 10 ** ((b + 1) / bins_per_decade)
        qv = _weighted_quantiles(lo, hi, h["views"].to_numpy(float), [0.05, 0.25, 0.5, 0.75, 0.95])
        out.append([key, int(h["views"].sum()), *qv])
    return pd.DataFrame(out, columns=cols).rename(columns={"key": dim})


def price_histogram(con: duckdb.DuckDBPyConnection, f: EdaFilters,
                    bins_per_decade: int = AggregateParams().price_bins_per_decade) -> pd.DataFrame:
    """Views and purchases per log-price bin: lower and upper bound in $, counts, conversion."""
    w, p = where(f)
    df = query(con, f"""SELECT price_bin,
                               coalesce(sum(events) FILTER (WHERE event_type = '{S.VIEW}'), 0) AS views,
                               coalesce(sum(events) FILTER (WHERE event_type = '{S.PURCHASE}'), 0) AS purchases
                        FROM daily WHERE {w} AND price_bin IS NOT NULL GROUP BY 1 ORDER BY 1""", p)
    df.insert(1, "price_from", 10 ** (df["price_bin"] / bins_per_decade))
    df.insert(2, "price_to", 10 ** ((df["price_bin"] + 1) / bins_per_decade))
    return df


def conversion_by_price_band(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Fixed price bands ($5, $10, $25 ... $2,500 edges): views, carts, purchases, revenue and rates."""
    w, p = where(f)
    df = query(con, f"""SELECT price_band, {_counts_sql()} FROM daily WHERE {w} AND price_band IS NOT NULL
                        GROUP BY 1 ORDER BY 1""", p)
    df = add_rates(df)
    df.insert(0, "band", [PRICE_BAND_LABELS[int(b)] for b in df["price_band"]])
    return df.drop(columns="price_band")
