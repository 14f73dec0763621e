"""Brand and category aggregates: top-N rankings, the category_code tree, prices per category, price bands.

Prices are those of viewed items (each view counts once), so a distribution shows what shoppers look at;
prices of 0 are left out of price statistics but counted in every funnel figure.
"""
from __future__ import annotations

import duckdb
import pandas as pd

from recsys import schema as S
from recsys.aggregates.query import PRICE_BAND_LABELS, EdaFilters, cube, query, where
from recsys.aggregates.stage import AggregateParams
from recsys.aggregates.funnel import _check_dim, _counts_sql, rated

RANK_BY = ("views", "purchases", "revenue", "view_to_purchase")


def top_n(con: duckdb.DuckDBPyConnection, f: EdaFilters, dim: str = "brand", by: str = "revenue", n: int = 15,
          min_views: int = 0) -> pd.DataFrame:
    """Top ``n`` values of ``dim`` ranked by ``by``; conversion rankings only count values with >= min_views."""
    _check_dim(dim)
    if by not in RANK_BY:
        raise ValueError(f"cannot rank by '{by}': use one of {', '.join(RANK_BY)}")
    w, p = where(f)
    keep = f"views >= {max(int(min_views), 1)}" if by == "view_to_purchase" else "TRUE"
    return query(con, rated(f"SELECT {dim}, {_counts_sql()} FROM {cube('daily', f, dim)} WHERE {w} GROUP BY 1",
                            where=keep, order=f"{by} DESC, views DESC, {dim}", limit=n), p)


def category_tree(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Every node of the category_code hierarchy (a.b.c -> a, a.b, a.b.c): id, parent, label, depth and funnel."""
    w, p = where(f)
    inner = f"""
        WITH leaves AS (SELECT string_split(category_code, '.') AS parts, {_counts_sql()}
                        FROM {cube('daily', f)} WHERE {w} GROUP BY category_code),
             nodes AS (SELECT array_to_string(parts[1:d], '.') AS id,
                              CASE WHEN d > 1 THEN array_to_string(parts[1:d - 1], '.') ELSE '' END AS parent,
                              parts[d] AS label, d AS depth, views, carts, purchases, removes, revenue
                       FROM leaves, range(1, 1 + (SELECT coalesce(max(len(parts)), 0) FROM leaves)) r(d)
                       WHERE len(parts) >= d)
        SELECT id, parent, label, depth::INTEGER AS depth, sum(views) AS views, sum(carts) AS carts,
               sum(purchases) AS purchases, sum(removes) AS removes, sum(revenue) AS revenue
        FROM nodes GROUP BY id, parent, label, depth"""
    return query(con, rated(inner, order="depth, id"), p)


QUANTILES = {"p5": 0.05, "q1": 0.25, "median": 0.5, "q3": 0.75, "p95": 0.95}


def price_distribution(con: duckdb.DuckDBPyConnection, f: EdaFilters, n: int = 10, dim: str = "category_code",
                       bins_per_decade: int = AggregateParams().price_bins_per_decade) -> pd.DataFrame:
    """Per top-``n`` ``dim`` value (by views): views with a price, p5 / q1 / median / q3 / p95 of viewed prices.

    Quantiles come from the log-price histogram, interpolated log-linearly inside the bin that crosses them."""
    _check_dim(dim)
    w, p = where(f)
    # the first bin whose cumulative share reaches q; inside it, q sits a fraction (q - before) / (share) along
    picks = ", ".join(
        f"power(10, arg_min(price_bin + ({q} - before) / (cum - before), price_bin) FILTER (WHERE cum >= {q} - 1e-12)"
        f" / {int(bins_per_decade)}) AS {name}" for name, q in QUANTILES.items())
    return query(con, f"""
        WITH h AS (SELECT {dim} AS key, price_bin, sum(events) AS views FROM {cube('prices', f, dim)}
                   WHERE {w} AND event_type = '{S.VIEW}' AND price_bin IS NOT NULL GROUP BY 1, 2),
             top AS (SELECT key, sum(views) AS total FROM h GROUP BY 1 ORDER BY total DESC, key LIMIT {int(n)}),
             c AS (SELECT key, price_bin, total,
                          sum(views) OVER (PARTITION BY key ORDER BY price_bin) / total AS cum,
                          (sum(views) OVER (PARTITION BY key ORDER BY price_bin) - views) / total AS before
                   FROM h JOIN top USING (key))
        SELECT key AS {dim}, any_value(total)::BIGINT AS views, {picks}
        FROM c GROUP BY key ORDER BY views DESC, key""", p)


def price_histogram(con: duckdb.DuckDBPyConnection, f: EdaFilters,
                    bins_per_decade: int = AggregateParams().price_bins_per_decade) -> pd.DataFrame:
    """Views and purchases per log-price bin: lower and upper bound in $, counts, conversion."""
    w, p = where(f)
    df = query(con, f"""SELECT price_bin,
                               coalesce(sum(events) FILTER (WHERE event_type = '{S.VIEW}'), 0) AS views,
                               coalesce(sum(events) FILTER (WHERE event_type = '{S.PURCHASE}'), 0) AS purchases
                        FROM {cube('prices', f)} WHERE {w} AND price_bin IS NOT NULL GROUP BY 1 ORDER BY 1""", p)
    df.insert(1, "price_from", 10 ** (df["price_bin"] / bins_per_decade))
    df.insert(2, "price_to", 10 ** ((df["price_bin"] + 1) / bins_per_decade))
    return df


def conversion_by_price_band(con: duckdb.DuckDBPyConnection, f: EdaFilters) -> pd.DataFrame:
    """Fixed price bands ($5, $10, $25 ... $2,500 edges): views, carts, purchases, revenue and rates."""
    w, p = where(f)
    df = query(con, rated(f"SELECT price_band, {_counts_sql()} FROM {cube('prices', f)} WHERE {w} "
                          f"AND price_band IS NOT NULL GROUP BY 1", order="price_band"), p)
    df.insert(0, "band", [PRICE_BAND_LABELS[int(b)] for b in df["price_band"]])
    return df.drop(columns="price_band")
