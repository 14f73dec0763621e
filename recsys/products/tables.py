"""The products stage's tables, in SQL over the ``events`` view (``stage.build_products`` writes them):

- **card**: name and stock code (stores whose files have them, e.g. UCI Online Retail; empty otherwise), brand,
  category, price, price band within its category, funnel counts and rates;
- **substitutes**: items co-viewed in sessions where at most one of the pair was bought, ranked by cosine of
  co-view sessions (``n_ab / sqrt(n_a * n_b)``), with a minimum number of shared sessions;
- **complements**: items bought by the same user in the same session or within ``copurchase_days``, ranked by
  lift (users buying both x all buyers / (buyers of a x buyers of b)) with a minimum number of such users;
- **category complements**: each category's top co-purchased categories (the rules stage's table when it exists,
  else the same definition computed here) with the best product of each, so a product without direct
  co-purchases still gets complements.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import read_manifest
from recsys.rules.stage import load_category_complements

PRICE_BANDS = ("budget", "mid-range", "premium")


@dataclass(frozen=True)
class ProductParams:
    """Knobs of the products stage."""
    max_session_items: int = 30     # sessions viewing more distinct items are skipped for co-views (browsing bots)
    min_coview_sessions: int = 2    # a substitute must share at least this many sessions
    min_copurchase_users: int = 2   # a complement must be bought together by at least this many users
    copurchase_days: float = 3.0    # same user, purchases at most this far apart, count as bought together
    top_k: int = 20                 # neighbours kept per product
    top_categories: int = 3         # complementary categories kept per category
    memory_limit: str = "6GB"       # DuckDB spills to disk past it
    seed: int = 7                   # seeds the search query tower


def product_cards(con) -> pd.DataFrame:
    """One row per product: its category, brand and price (:func:`recsys.schema.catalog_sql`), price band within
    its category, funnel counts, buyers, revenue and conversion rates."""
    df = con.execute(f"""
        WITH cat AS ({S.catalog_sql()}),
        funnel AS (
            SELECT product_id,
                   count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
                   count(*) FILTER (WHERE event_type = '{S.CART}') AS carts,
                   count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases,
                   count(DISTINCT user_id) FILTER (WHERE event_type = '{S.PURCHASE}') AS buyers,
                   {S.money_sum_sql('price', f"event_type = '{S.PURCHASE}'")} AS revenue
            FROM events GROUP BY product_id)
        SELECT cat.*, funnel.* EXCLUDE (product_id), {S.category_key_sql()} AS category_key
        FROM cat JOIN funnel USING (product_id) ORDER BY product_id
    """).df()
    df["cart_rate"] = (df["carts"] / df["views"].where(df["views"] > 0)).fillna(0.0)
    df["purchase_rate"] = (df["purchases"] / df["views"].where(df["views"] > 0)).fillna(0.0)
    df["price_band"] = price_bands(df)
    return df


def with_names(cards: pd.DataFrame, names: pd.DataFrame | None) -> pd.DataFrame:
    """The cards with ``name`` and ``stock_code`` after ``product_id`` (empty strings for products without)."""
    out = cards.drop(columns=[c for c in ("name", "stock_code") if c in cards])
    got = None if names is None else names.drop_duplicates("product_id").set_index("product_id")
    for i, col in enumerate(("name", "stock_code"), start=1):
        values = [""] * len(out) if got is None else out["product_id"].map(got[col]).astype(object).fillna("")
        out.insert(i, col, np.asarray(values, dtype=object))
    return out


def price_bands(df: pd.DataFrame) -> pd.Series:
    """budget / mid-range / premium by the price's percentile rank within its category (terciles)."""
    pct = df["price"].where(df["price"] > 0).groupby(df["category_key"]).rank(pct=True, method="average")
    band = np.select([pct <= 1 / 3, pct <= 2 / 3, pct > 2 / 3], PRICE_BANDS, default="unpriced")
    return pd.Series(band, index=df.index, dtype="object")


def coview_substitutes(con, p: ProductParams) -> pd.DataFrame:
    """Top-k co-viewed items per product, over sessions where at most one item of the pair was bought."""
    return con.execute(f"""
        WITH sv AS (
            SELECT hash(user_session) AS s, product_id AS p, bool_or(event_type = '{S.PURCHASE}') AS bought
            FROM events GROUP BY 1, 2 HAVING bool_or(event_type = '{S.VIEW}')),
        ok AS (SELECT s FROM sv GROUP BY s HAVING count(*) BETWEEN 2 AND {int(p.max_session_items)}),
        v AS (SELECT sv.* FROM sv JOIN ok USING (s)),
        n AS (SELECT p, count(*) AS n FROM v GROUP BY p),
        pairs AS (
            SELECT a.p AS a, b.p AS b, count(*) AS co_sessions
            FROM v a JOIN v b ON a.s = b.s AND a.p <> b.p AND NOT (a.bought AND b.bought)
            GROUP BY 1, 2 HAVING count(*) >= {int(p.min_coview_sessions)}),
        scored AS (
            SELECT a AS product_id, b AS other_id, co_sessions,
                   co_sessions / sqrt(na.n * nb.n) AS score
            FROM pairs JOIN n na ON na.p = a JOIN n nb ON nb.p = b),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY score DESC, co_sessions DESC,
                                         other_id) AS rank FROM scored)
        SELECT product_id, other_id, rank::INTEGER AS rank, co_sessions::BIGINT AS co_sessions,
               score::DOUBLE AS score
        FROM ranked WHERE rank <= {int(p.top_k)} ORDER BY product_id, rank
    """).df()


def _purchases_sql(p: ProductParams) -> str:
    """Purchase events as (user, session, product, category key, time), the basket unit for co-purchases."""
    return f"""
        pur AS (SELECT user_id AS u, hash(user_session) AS s, product_id AS p, min({S.category_key_sql()}) AS c,
                       min(epoch(event_time)) AS t
                FROM events WHERE event_type = '{S.PURCHASE}' GROUP BY 1, 2, 3),
        together AS (
            SELECT a.u, a.p AS a, b.p AS b, a.c AS ca, b.c AS cb
            FROM pur a JOIN pur b ON a.u = b.u AND a.p <> b.p
             AND (a.s = b.s OR abs(a.t - b.t) <= {float(p.copurchase_days) * 86400.0})),
        total AS (SELECT greatest(count(DISTINCT u), 1) AS n FROM pur)"""


def copurchase_complements(con, p: ProductParams) -> pd.DataFrame:
    """Top-k complements per product: co-purchased by >= min users, ranked by lift then co-buyers."""
    return con.execute(f"""
        WITH {_purchases_sql(p)},
        buyers AS (SELECT p, count(DISTINCT u) AS n FROM pur GROUP BY p),
        pairs AS (SELECT a, b, count(DISTINCT u) AS n FROM together GROUP BY 1, 2
                  HAVING count(DISTINCT u) >= {int(p.min_copurchase_users)}),
        scored AS (
            SELECT a AS product_id, b AS other_id, pairs.n AS co_buyers, pairs.n / total.n AS support,
                   pairs.n / ba.n AS confidence, pairs.n * total.n / (ba.n * bb.n) AS lift
            FROM pairs JOIN buyers ba ON ba.p = a JOIN buyers bb ON bb.p = b CROSS JOIN total),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY lift DESC, co_buyers DESC,
                                                other_id) AS rank FROM scored)
        SELECT product_id, other_id, rank::INTEGER AS rank, co_buyers::BIGINT AS co_buyers,
               support::DOUBLE AS support, confidence::DOUBLE AS confidence, lift::DOUBLE AS lift
        FROM ranked WHERE rank <= {int(p.top_k)} ORDER BY product_id, rank
    """).df()


def category_complements(con, p: ProductParams) -> pd.DataFrame:
    """Each category's top co-purchased categories (by co-buyers, then lift), with counts and lift.

    A category is the category_code, or ``id:<category_id>`` for products without a code (a third of real rows).
    """
    return con.execute(f"""
        WITH {_purchases_sql(p)},
        cb AS (SELECT c, count(DISTINCT u) AS n FROM pur GROUP BY c),
        pairs AS (SELECT ca, cb AS cb_, count(DISTINCT u) AS n FROM together WHERE ca <> cb GROUP BY 1, 2
                  HAVING count(DISTINCT u) >= {int(p.min_copurchase_users)}),
        scored AS (SELECT ca AS category, cb_ AS other_category, pairs.n AS co_purchases,
                          pairs.n * total.n / (x.n * y.n) AS lift
                   FROM pairs JOIN cb x ON x.c = ca JOIN cb y ON y.c = cb_ CROSS JOIN total),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY category ORDER BY co_purchases DESC, lift DESC,
                                                other_category) AS rank FROM scored)
        SELECT category, other_category, rank::INTEGER AS rank, co_purchases::BIGINT AS co_purchases,
               lift::DOUBLE AS lift
        FROM ranked WHERE rank <= {int(p.top_categories)} ORDER BY category, rank
    """).df()


def rules_category_complements(root: str | os.PathLike | None, top: int) -> pd.DataFrame | None:
    """The rules stage's category complements as (category, other_category, rank, co_purchases, lift); None when
    the rules stage is not built."""
    if read_manifest(root, "rules") is None:
        return None
    df = load_category_complements(root).rename(columns={"baskets": "co_purchases"})
    out = df.sort_values(["category", "co_purchases", "lift"], ascending=[True, False, False])
    out["rank"] = out.groupby("category").cumcount() + 1
    out = out[out["rank"] <= top]
    return out[["category", "other_category", "rank", "co_purchases", "lift"]].astype(
        {"rank": "int32", "co_purchases": "int64", "lift": "float64"}).reset_index(drop=True)


def best_category_products(con, pairs: pd.DataFrame, p: ProductParams) -> pd.DataFrame:
    """For each (category, other_category): the product of the other category most co-bought with the category."""
    if pairs.empty:
        return pairs.assign(best_product_id=pd.Series(dtype="int64"), best_co_buyers=pd.Series(dtype="int64"))
    con.register("cat_pairs", pairs[["category", "other_category"]])
    best = con.execute(f"""
        WITH {_purchases_sql(p)},
        pc AS (SELECT ca AS category, cb AS other_category, b AS product_id, count(DISTINCT u) AS n
               FROM together JOIN cat_pairs ON category = ca AND other_category = cb GROUP BY 1, 2, 3),
        pop AS (SELECT p, count(*) AS n FROM pur GROUP BY p)
        SELECT category, other_category,
               first(product_id ORDER BY pc.n DESC, pop.n DESC, product_id) AS best_product_id,  -- ties: lower id
               max(pc.n) AS best_co_buyers
        FROM pc JOIN pop ON pop.p = pc.product_id GROUP BY 1, 2
    """).df()
    con.unregister("cat_pairs")
    return pairs.merge(best, on=["category", "other_category"], how="left")
