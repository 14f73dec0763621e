"""Who a user is, for the recommender explorer: telling example users and one user's profile (DuckDB)."""
from __future__ import annotations

import json
import os
from typing import Any

import duckdb
import pandas as pd

from recsys import schema as S
from recsys.artifacts import connect, read_manifest, stage_dir
from recsys.model.store import MODEL_STAGE

TIMELINE_ROWS = 300
EXAMPLES_FILE = "example_users.json"  # written by the model stage
EXAMPLES_PER_KIND = 5


def find_telling_users(con: duckdb.DuckDBPyConnection, n: int = EXAMPLES_PER_KIND) -> dict[str, list[int]]:
    """Example user ids per kind: heavy buyers, browsers who never buy, single-category fans, short histories
    (from the ``events`` view of ``con``; one scan of the events)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE per_user AS
        SELECT user_id, count(*) AS events,
               count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases,
               count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
               count(DISTINCT category_code) FILTER (WHERE category_code <> '{S.UNKNOWN_CATEGORY}') AS cats,
               count(DISTINCT product_id) AS products
        FROM events GROUP BY user_id""")
    queries = {
        "heavy buyer": "purchases > 0 ORDER BY purchases DESC, events DESC",
        "browser who never buys": "purchases = 0 AND products >= 5 ORDER BY views DESC",
        "single-category fan": "cats = 1 AND products >= 5 ORDER BY products DESC",
        "short history": "products BETWEEN 2 AND 3 ORDER BY events DESC",
    }
    out = {}
    for kind, where in queries.items():
        ids = con.execute(f"SELECT user_id FROM per_user WHERE {where}, user_id LIMIT {int(n)}").df()
        out[kind] = [int(u) for u in ids["user_id"]]
    return out


def telling_users(root: str | os.PathLike | None = None) -> dict[str, list[int]]:
    """The example users the model stage stored (a scan of every event: ~10 s at October size), else found live."""
    path = stage_dir(root, MODEL_STAGE) / EXAMPLES_FILE
    if read_manifest(root, MODEL_STAGE) is not None and path.exists():
        try:
            return {k: [int(u) for u in v] for k, v in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError):  # unreadable: find them again
            pass
    with connect(root) as con:
        return find_telling_users(con)


def user_profile(root: str | os.PathLike | None, user_id: int) -> dict[str, Any]:
    """One user's totals, recent event timeline, top categories and brands; KeyError for an unknown user.

    One scan of the events for the user's rows, the figures from those in pandas: four scans (totals, timeline,
    two tops) took 13.6 s of the Recommender page's first visit at Oct+Nov (110M events) from a cold page cache."""
    uid = int(user_id)
    with connect(root) as con:  # closed on the way out
        rows = con.execute("""
            SELECT event_time, event_type, product_id, brand, category_code, price, user_session
            FROM events WHERE user_id = ?""", [uid]).df()
    if rows.empty:
        raise KeyError(f"unknown user_id {uid}: this store has no events for that user")
    kind = rows[S.EVENT_TYPE]
    bought = kind == S.PURCHASE
    totals = {"events": len(rows), "sessions": int(rows[S.USER_SESSION].nunique()),
              "products": int(rows[S.PRODUCT_ID].nunique()), "views": int((kind == S.VIEW).sum()),
              "carts": int((kind == S.CART).sum()), "purchases": int(bought.sum()),
              "spend": float(rows.loc[bought, S.PRICE].sum()), "first_seen": rows[S.EVENT_TIME].min(),
              "last_seen": rows[S.EVENT_TIME].max()}
    timeline = rows.sort_values(S.EVENT_TIME, ascending=False, kind="stable").head(TIMELINE_ROWS)
    return {"user_id": uid, "totals": totals, "timeline": timeline.sort_values(S.EVENT_TIME, kind="stable"),
            "top_categories": _top(rows, S.CATEGORY_CODE, bought), "top_brands": _top(rows, S.BRAND, bought)}


def _top(rows: pd.DataFrame, col: str, bought: pd.Series, n: int = 8) -> pd.DataFrame:
    """The user's ``n`` values of ``col`` with the most events: events and purchases, ties by value."""
    g = rows.assign(purchases=bought.astype("int64")).groupby(col, dropna=False, sort=False)
    out = pd.DataFrame({"events": g.size(), "purchases": g["purchases"].sum()}).rename_axis(col).reset_index()
    return out.sort_values(["events", col], ascending=[False, True]).head(n).reset_index(drop=True)


def popular_products(root: str | os.PathLike | None = None, n: int = 300) -> pd.DataFrame:
    """The most viewed products with readable labels (choices for the new-visitor mode)."""
    with connect(root) as con:  # closed on the way out
        return con.execute(f"""
            WITH cat AS ({S.catalog_sql()}),
            n AS (SELECT product_id, count(*) AS events FROM events GROUP BY product_id)
            SELECT product_id, brand, category_code, price, events FROM cat JOIN n USING (product_id)
            ORDER BY events DESC, product_id LIMIT {int(n)}""").df()
