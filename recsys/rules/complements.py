"""Category complements of the rules stage: each category's top co-purchased categories over purchase baskets,
and the category x complement matrix the affinity page draws.

The basket and category keys are ``baskets``' own, so they match the rules; ``stage`` stores the table and
``products`` reads it through ``stage.load_category_complements``.
"""
from __future__ import annotations

import pandas as pd

from recsys import schema as S
from recsys.engine import as_engine
from recsys.rules.baskets import basket_sql, item_sql


def category_complements_con(con, basket: str = "session", top: int = 3) -> pd.DataFrame:
    """Each category's top co-purchased categories: baskets holding both, confidence, lift (purchase baskets);
    ``con`` is a DuckDB connection or an engine (the Spark engine runs the same SQL)."""
    item, _ = item_sql("category")
    engine = as_engine(con)
    return engine.fetch(f"""
        WITH bi AS (SELECT DISTINCT {basket_sql(basket, engine.dialect)} AS b, {item} AS c FROM events
                    WHERE {S.EVENT_TYPE} = '{S.PURCHASE}'),
        total AS (SELECT greatest(count(DISTINCT b), 1) AS n FROM bi),
        cn AS (SELECT c, count(*) AS n FROM bi GROUP BY c),
        pairs AS (SELECT x.c AS category, y.c AS other_category, count(*) AS baskets
                  FROM bi x JOIN bi y ON x.b = y.b AND x.c <> y.c GROUP BY 1, 2),
        scored AS (SELECT category, other_category, baskets, baskets / total.n AS support,
                          baskets / a.n AS confidence, baskets * total.n / (a.n * o.n) AS lift,
                          a.n AS category_baskets
                   FROM pairs JOIN cn a ON a.c = category JOIN cn o ON o.c = other_category CROSS JOIN total),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY category
                                                ORDER BY baskets DESC, lift DESC, other_category) AS rank
                   FROM scored)
        SELECT category, other_category, rank::INTEGER AS rank, baskets::BIGINT AS baskets,
               category_baskets::BIGINT AS category_baskets, support::DOUBLE AS support,
               confidence::DOUBLE AS confidence, lift::DOUBLE AS lift
        FROM ranked WHERE rank <= {int(top)} ORDER BY category_baskets DESC, category, rank""")


def complements_matrix(cc: pd.DataFrame, value: str = "lift", top: int = 15) -> pd.DataFrame:
    """Category x complement matrix of ``value`` for the ``top`` categories with the most purchase baskets."""
    cats = cc.drop_duplicates("category").nlargest(top, "category_baskets")["category"]
    sub = cc[cc["category"].isin(cats)]
    return sub.pivot_table(index="category", columns="other_category", values=value, aggfunc="first")
