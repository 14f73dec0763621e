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


def test_the_catalog_rule_keeps_one_combination_per_product_and_the_lower_median_positive_price():
    ev = pd.DataFrame({
        # product 1: the combination (10, a, x) twice beats each of three (11, b, *) once, although category 11
        # alone is the most frequent (per-column modes would pair 11 with x); product 2: a 2-2 tie -> lower id
        "product_id": [1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3],
        "category_id": [10, 10, 11, 11, 11, 21, 20, 21, 20, 30, 30],
        "category_code": ["a", "a", "b", "b", "b", "d", "c", "d", "c", "e", "e"],
        "brand": ["x", "x", "y", "z", "w", "q", "p", "q", "p", "r", "r"],
        # product 1: positive prices 5, 7, 9 -> 7 (zeros ignored); 2: 1, 2, 3, 4 -> 2 (the lower median, not 2.5);
        # 3: no positive price -> 0
        "price": [9.0, 5.0, 7.0, 0.0, 0.0, 3.0, 1.0, 4.0, 2.0, 0.0, -1.0]})
    con = duckdb.connect()
    try:
        con.register("events", ev)
        got = con.execute(f"SELECT * FROM ({S.catalog_sql()}) ORDER BY product_id").df()
    finally:
        con.close()
    assert got[["product_id", "category_id", "category_code", "brand"]].values.tolist() == [
        [1, 10, "a", "x"], [2, 20, "c", "p"], [3, 30, "e", "r"]]
    assert got["price"].tolist() == [7.0, 2.0, 0.0]


def test_find_sorted_gives_positions_and_found_flags_and_copes_with_an_empty_map():
    pos, found = S.find_sorted(np.array([3, 7, 9], np.int64), np.array([7, 1, 9, 10, 3]))
    assert found.tolist() == [True, False, True, False, True]
    assert pos[found].tolist() == [1, 2, 0]
    assert ((pos >= 0) & (pos < 3)).all()  # safe to index with, found or not
    pos, found = S.find_sorted(np.array([], np.int64), np.array([5, 6]))
    assert pos.tolist() == [0, 0] and not found.any()
