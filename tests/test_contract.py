"""The shared rules of recsys/schema.py agree between SQL and numpy (known answers on a hand-made catalog)."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S


def test_event_codes_are_the_same_in_sql_and_python():
    con = duckdb.connect()
    try:
        got = con.execute(f"SELECT event_type, {S.event_code_sql()} AS code FROM (VALUES ('view'), ('cart'), "
                          "('purchase'), ('remove_from_cart')) t(event_type)").fetchall()
    finally:
        con.close()
    assert dict(got) == S.EVENT_CODE == {"view": 0, "cart": 1, "purchase": 2, "remove_from_cart": 3}
    assert (S.VIEW_CODE, S.CART_CODE, S.PURCHASE_CODE, S.REMOVE_CODE) == (0, 1, 2, 3)


def test_the_category_key_is_the_code_else_the_raw_id_in_sql_and_numpy():
    catalog = pd.DataFrame({"category_id": [10, 10, 11, 12, 12],
                            "category_code": ["a.b", "a.b", S.UNKNOWN_CATEGORY, S.UNKNOWN_CATEGORY, "c"]})
    con = duckdb.connect()
    try:
        con.register("catalog", catalog)
        sql = [r[0] for r in con.execute(f"SELECT {S.category_key_sql()} FROM catalog").fetchall()]
    finally:
        con.close()
    assert sql == ["a.b", "a.b", "id:11", "id:12", "c"]
    keys = S.category_keys(catalog)
    assert keys.tolist() == pd.factorize(pd.Series(sql))[0].tolist()  # the same groups
    assert len(np.unique(keys)) == 4
