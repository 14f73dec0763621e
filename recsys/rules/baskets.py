"""The rules stage's baskets, in SQL over the ``events`` view: the basket and item keys, the one scan of the
scope's events into basket-item pairs, the candidate and frequent items, the multi-item baskets the miners read,
and the auto support.

A basket is the distinct items of one session (or one user and UTC day) within a scope of events; its items are
products, category leaves, top-level categories or brands (``params.RuleParams``). ``mining`` runs these steps
in order; ``complements`` reuses the basket and item keys; ``spark`` runs :func:`scope_counts_sql` on Spark.
"""
from __future__ import annotations

import math

import pandas as pd

from recsys import schema as S
from recsys.engine import DUCKDB, Dialect
from recsys.rules.params import SCOPES, RuleParams


def item_sql(granularity: str) -> tuple[str, str]:
    """(item key expression, extra WHERE filter) for a granularity; unknown brands/top levels are left out."""
    if granularity == "product":
        return S.PRODUCT_ID, "TRUE"  # typed: cast to text only for the few frequent items
    if granularity == "category":
        return S.category_key_sql(), "TRUE"
    if granularity == "top_category":
        return f"split_part({S.CATEGORY_CODE}, '.', 1)", f"{S.CATEGORY_CODE} <> '{S.UNKNOWN_CATEGORY}'"
    return S.BRAND, f"{S.BRAND} <> '{S.UNKNOWN_BRAND}'"


def basket_sql(basket: str, d: Dialect = DUCKDB) -> str:
    """An integer basket key: 64-bit hash of the session id (collisions ~1e-5 at 10M sessions), or user x UTC day."""
    if basket == "session":
        return d.hash64(S.USER_SESSION)
    return f"{S.USER_ID} * 100000 + {d.day_number(S.EVENT_TIME)}"  # the session time zone is UTC


def scope_counts_sql(params: RuleParams, d: Dialect = DUCKDB) -> str:
    """(basket b, item i, events n) of every basket-item pair in the scope: the one scan of the events."""
    item, where = item_sql(params.granularity)
    types = ", ".join(f"'{t}'" for t in SCOPES[params.scope])
    return (f"SELECT b, i, count(*) AS n FROM (SELECT {basket_sql(params.basket, d)} AS b, {item} AS i "
            f"FROM events WHERE {S.EVENT_TYPE} IN ({types}) AND {where}) GROUP BY b, i")


def count_baskets(con, params: RuleParams, scope: str | None = None) -> int:
    """The number of baskets of the scope; also creates temp tables ``scope_bi(b, i, n)`` (from ``scope``, a
    table of :func:`scope_counts_sql` rows, when given: the Spark engine's) and ``item_events(i, n)``."""
    source = f"SELECT * FROM {scope}" if scope else scope_counts_sql(params)
    con.execute(f"CREATE OR REPLACE TEMP TABLE scope_bi AS {source}")
    con.execute("CREATE OR REPLACE TEMP TABLE item_events AS SELECT i, sum(n) AS n FROM scope_bi GROUP BY i")
    return int(con.execute("SELECT count(DISTINCT b) FROM scope_bi").fetchall()[0][0])


def load_basket_items(con, params: RuleParams, *, min_events: int = 1, top: int | None = None) -> None:
    """Temp table ``basket_items(b, i)``: distinct items per basket, for candidate items only.

    Candidates are the items with >= ``min_events`` events (an item in k baskets has >= k events, so no frequent
    item is lost), or the ``top`` items by events. Skipping the rest makes the later steps several times smaller.
    """
    pick = f"ORDER BY n DESC, i LIMIT {int(top)}" if top else f"WHERE n >= {int(min_events)}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE cand AS SELECT i FROM item_events {pick}")
    con.execute("""CREATE OR REPLACE TEMP TABLE basket_items AS
        SELECT b, i FROM scope_bi WHERE i IN (SELECT i FROM cand)""")


def min_basket_count(params: RuleParams, n_baskets: int) -> int:
    return max(params.min_baskets, math.ceil(params.min_support * n_baskets - 1e-9))


def frequent_baskets(con, n_baskets: int, params: RuleParams) -> tuple[pd.DataFrame, int, int]:
    """(frequent items with counts, min count, rows of temp table ``multi``: baskets with >= 2 frequent items)."""
    min_count = min_basket_count(params, n_baskets)
    items = con.execute(f"""CREATE OR REPLACE TEMP TABLE freq AS
        SELECT i, count(*) AS n, (row_number() OVER (ORDER BY count(*) DESC, i) - 1)::INTEGER AS code
        FROM basket_items GROUP BY i HAVING count(*) >= {min_count};
        SELECT i::VARCHAR AS item, n AS baskets FROM freq ORDER BY code""").df()
    con.execute("""CREATE OR REPLACE TEMP TABLE multi AS
        WITH f AS (SELECT bi.b, freq.code, count(*) OVER (PARTITION BY bi.b) AS k
                   FROM basket_items bi JOIN freq USING (i))
        SELECT b, code, k FROM f WHERE k >= 2""")
    return items, min_count, int(con.execute("SELECT count(*) FROM multi").fetchall()[0][0])


def n_rows_multi(con) -> int:
    """How many baskets hold two or more frequent items (the rows FP-growth and Apriori mine)."""
    return int(con.execute("SELECT count(DISTINCT b) FROM multi").fetchall()[0][0])


def basket_codes(con) -> pd.DataFrame:
    """(row, code) of every frequent item of the multi-item baskets, rows numbered 0..B-1."""
    return con.execute("SELECT dense_rank() OVER (ORDER BY b) - 1 AS row, code FROM multi").df()


AUTO_TOP_ITEMS = 3_000   # auto support counts pairs among this many most frequent items
AUTO_MAX_PAIR_ROWS = 50e6


def auto_support(con, n_baskets: int, params: RuleParams) -> float:
    """The support of the ``target_pairs``-th most frequent item pair (never below ``min_baskets`` baskets).

    A fixed share gives thousands of rules on a small store and none on a big one; the k-th pair's support keeps
    the default at tens to a few hundred rules at any size. Pairs are counted among the most frequent items only
    (exact unless the k-th pair is rarer than the item ranked AUTO_TOP_ITEMS).
    """
    top = AUTO_TOP_ITEMS
    while True:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE auto_bi AS
            WITH top AS (SELECT i FROM basket_items GROUP BY i ORDER BY count(*) DESC, i LIMIT {top})
            SELECT b, i, count(*) OVER (PARTITION BY b) AS k FROM basket_items JOIN top USING (i)""")
        work = float(con.execute("SELECT coalesce(sum(k - 1) / 2, 0) FROM auto_bi").fetchall()[0][0])
        if work <= AUTO_MAX_PAIR_ROWS or top <= 50:
            break
        top //= 4
    counts = con.execute(f"""SELECT count(*) AS n FROM auto_bi x JOIN auto_bi y ON x.b = y.b AND x.i < y.i
        WHERE x.k >= 2 GROUP BY x.i, y.i ORDER BY n DESC LIMIT {int(params.target_pairs)}""").df()["n"]
    con.execute("DROP TABLE auto_bi")
    kth = int(counts.iloc[-1]) if len(counts) else params.min_baskets
    return min(1.0, max(kth, params.min_baskets) / n_baskets)
