"""Known answers for the Customers library: RFM quantile scores, segment rules, segment sizes and top categories,
the expected-value model and its refusals, Pareto shares, over tiny hand-made per-buyer tables."""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from recsys.aggregates import customers as C
from recsys.aggregates.query import ALL, EdaFilters

D = dt.date
# user: orders, revenue, first purchase, last purchase; the data runs 2019-10-01 .. 10-31
BUYERS = {1: (5, 500.0, D(2019, 10, 1), D(2019, 10, 31)), 2: (1, 10.0, D(2019, 10, 1), D(2019, 10, 1)),
          3: (2, 100.0, D(2019, 10, 10), D(2019, 10, 20)), 4: (1, 50.0, D(2019, 10, 30), D(2019, 10, 30)),
          5: (3, 200.0, D(2019, 10, 5), D(2019, 10, 25))}


def _con(buyers: dict, first: dt.date, last: dt.date, extra_users: list[tuple] = ()) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    rows = [(ALL, ALL, u, o, o, r, 1, f, lp) for u, (o, r, f, lp) in buyers.items()] + list(extra_users)
    users = pd.DataFrame(rows, columns=["category_top", "brand", "user_id", "purchases", "purchase_sessions",
                                        "revenue", "purchase_days", "first_purchase", "last_purchase"])
    con.register("users_df", users)
    con.execute("CREATE TABLE users AS SELECT * REPLACE (first_purchase::DATE AS first_purchase, "
                "last_purchase::DATE AS last_purchase) FROM users_df")
    con.register("ua", pd.DataFrame({"category_top": ALL, "brand": ALL, "day": [first, last]}))
    con.execute("CREATE TABLE user_activity AS SELECT category_top, brand, day::DATE AS day FROM ua")
    days = pd.DataFrame([(ALL, ALL, 1, D(2019, 10, 1), 2, 2, 200.0), (ALL, ALL, 1, D(2019, 10, 31), 3, 3, 300.0)],
                        columns=["category_top", "brand", "user_id", "day", "purchase_sessions", "purchases",
                                 "revenue"])
    con.register("ud", days)
    con.execute("CREATE TABLE user_days AS SELECT * REPLACE (day::DATE AS day) FROM ud")
    sales = pd.DataFrame({"day": [D(2019, 10, 1)] * 4 + [D(2019, 10, 2)], "category_top": "a", "brand": "b",
                          "product_id": [1, 2, 3, 4, 1], "purchases": 1, "revenue": [30.0, 10.0, 5.0, 5.0, 50.0]})
    con.register("ps", sales)
    con.execute("CREATE TABLE product_sales AS SELECT * REPLACE (day::DATE AS day) FROM ps")
    return con


@pytest.fixture()
def con():
    cats = [("electronics", ALL, 1, 4, 4, 400.0, 1, D(2019, 10, 1), D(2019, 10, 31)),
            ("apparel", ALL, 1, 1, 1, 100.0, 1, D(2019, 10, 31), D(2019, 10, 31)),
            ("apparel", ALL, 2, 1, 1, 10.0, 1, D(2019, 10, 1), D(2019, 10, 1))]
    return _con(BUYERS, D(2019, 10, 1), D(2019, 10, 31), cats)


def test_rfm_scores_are_quantiles_of_worse_buyers(con):
    df = C.rfm(con, EdaFilters()).set_index("user_id")
    assert df["recency_days"].to_dict() == {1: 0, 2: 30, 3: 11, 4: 1, 5: 6}
    assert df["r"].to_dict() == {1: 5, 2: 1, 3: 2, 4: 4, 5: 3}
    assert df["f"].to_dict() == {1: 5, 2: 1, 3: 3, 4: 1, 5: 4}  # users 2 and 4 tie on one order: both F = 1
    assert df["m"].to_dict() == {1: 5, 2: 1, 3: 3, 4: 2, 5: 4}
    assert df["segment"].to_dict() == {1: "champions", 2: "lost", 3: "at risk", 4: "promising", 5: "loyal"}


def test_the_sql_scores_match_the_pandas_rule(con):
    df = C.rfm(con, EdaFilters())
    assert C.quantile_scores(df["orders"]).tolist() == df["f"].tolist()
    assert C.quantile_scores(df["recency_days"], higher_is_better=False).tolist() == df["r"].tolist()
    ties = pd.Series([1, 1, 1, 1, 1, 1, 1, 1, 2, 3])
    assert C.quantile_scores(ties).tolist() == [1] * 8 + [5, 5]  # 80 % below the 2s: 1 + floor(4.0)


def test_segment_rules_cover_every_cell_once():
    cells = {(r, f): C.segment_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert set(cells.values()) == set(C.SEGMENT_NAMES)  # all eleven are reachable
    assert cells[(5, 5)] == "champions" and cells[(1, 5)] == "can't lose" and cells[(1, 1)] == "lost"
    assert cells[(2, 1)] == "hibernating" and cells[(3, 3)] == "need attention" and cells[(5, 2)] == \
        "potential loyalists"
    claims = {c: [s.name for s in C.SEGMENTS if s.r[0] <= c[0] <= s.r[1] and s.f[0] <= c[1] <= s.f[1]]
              for c in cells}
    # one rule per cell, except R 1 F 1: lost comes before hibernating, whose range also holds it
    assert {c: v for c, v in claims.items() if len(v) > 1} == {(1, 1): ["lost", "hibernating"]}
    rules = C.segment_rules()
    assert rules.loc[rules["segment"] == "loyal", ["R score", "F score"]].values.tolist() == [["3-4", "4-5"]]
    with pytest.raises(ValueError):
        C.segment_of(0, 3)


def test_segment_summary_sizes_shares_and_short_span_note(con):
    s = C.segment_summary(con, EdaFilters(), horizon=30).set_index("segment")
    assert list(s.index) == list(C.SEGMENT_NAMES)
    assert s.loc["champions", "buyers"] == 1 and s.loc["hibernating", "buyers"] == 0
    assert s.loc["champions", "revenue_share"] == pytest.approx(500 / 860)
    assert s["buyer_share"].sum() == pytest.approx(1.0)
    assert s.loc["loyal", "avg_order_value"] == pytest.approx(200 / 3)
    assert s.loc["champions", "value_note"] == "data span 31 days < 2 × 30"  # no number on a month of data
    assert s["expected_value_30d"].isna().all()
    assert s.loc["new", "value_note"] == "no buyers"


def test_expected_value_known_answer_and_refusals():
    orders, value, note = C.expected_value(orders=75, repeat_orders=50, exposure_days=1000, revenue=7500,
                                           repeat_buyers=25, span_days=200, horizon=90)
    assert orders == pytest.approx(4.5) and value == pytest.approx(450.0) and note == ""
    assert C.expected_value(75, 50, 1000, 7500, 25, 179, 90) == (None, None, "data span 179 days < 2 × 90")
    assert C.expected_value(75, 50, 1000, 7500, 19, 200, 90)[2] == "19 repeat buyers < 20"


def test_expected_value_in_the_summary_when_the_span_allows():
    # 20 buyers with 3 orders up to the last day (R 3, F 3: need attention), 20 with one order on the first day
    buyers = {u: (3, 300.0, D(2019, 10, 1), D(2019, 12, 31)) for u in range(20)}
    buyers |= {u: (1, 50.0, D(2019, 10, 1), D(2019, 10, 1)) for u in range(20, 40)}
    s = C.segment_summary(_con(buyers, D(2019, 10, 1), D(2019, 12, 31)), EdaFilters(), horizon=30)
    s = s.set_index("segment")
    assert s.loc["need attention", "buyers"] == 20 and s.loc["lost", "buyers"] == 20
    rate = 40 / (20 * 92)  # repeat orders per buyer-day since the first purchase day
    assert s.loc["need attention", "expected_orders_30d"] == pytest.approx(rate * 30)
    assert s.loc["need attention", "expected_value_30d"] == pytest.approx(rate * 30 * 100.0)
    assert s.loc["lost", "value_note"] == "0 repeat buyers < 20"


def test_rf_grid_and_segment_top(con):
    g = C.rf_grid(con, EdaFilters())
    assert len(g) == 25 and g["buyers"].sum() == 5
    assert g.loc[(g["r"] == 5) & (g["f"] == 5), "revenue"].item() == 500.0
    top = C.segment_top(con, EdaFilters(), "champions")
    assert top["category_top"].tolist() == ["electronics", "apparel"]
    assert top["share_of_segment_revenue"].tolist() == pytest.approx([0.8, 0.2])
    assert C.segment_top(con, EdaFilters(), "hibernating").empty
    with pytest.raises(ValueError, match="unknown segment"):
        C.segment_top(con, EdaFilters(), "whales")


def test_a_date_range_moves_the_reference_day(con):
    f = EdaFilters(start=D(2019, 10, 1), end=D(2019, 10, 15))
    assert C.data_span(con, f) == {"first": D(2019, 10, 1), "reference": D(2019, 10, 15), "days": 15}
    df = C.rfm(con, f).set_index("user_id")
    assert df.loc[1, "orders"] == 2 and df.loc[1, "revenue"] == 200.0 and df.loc[1, "recency_days"] == 14


def test_pareto_shares_known_answers():
    v = np.array([40, 20, 10, 5, 5, 5, 5, 5, 3, 2], dtype=float)
    s = C.pareto_shares(v)
    assert s["count"].tolist() == [1, 1, 2] and s["revenue_share"].tolist() == pytest.approx([0.4, 0.4, 0.6])
    assert C.pareto_shares(np.ones(30))["count"].tolist() == [1, 3, 6]  # 0.1 x 30 is 3, not 4 (float noise)
    curve = C.pareto_curve(v)
    assert curve.iloc[0].tolist() == [0.0, 0.0] and curve.iloc[-1].tolist() == pytest.approx([1.0, 1.0])
    assert curve["share_of_revenue"].is_monotonic_increasing and curve.loc[1, "share_of_revenue"] == 0.4
    assert C.pareto_curve(np.array([])).empty


def test_pareto_by_customer_and_product(con):
    p = C.pareto(con, EdaFilters(), "customer")
    assert p["n"] == 5 and p["shares"]["revenue_share"].iloc[0] == pytest.approx(500 / 860)
    q = C.pareto(con, EdaFilters(), "product")
    assert q["n"] == 4 and q["shares"]["revenue_share"].iloc[0] == pytest.approx(0.8)  # product 1: 30 + 50
    assert C.pareto(con, EdaFilters(end=D(2019, 10, 1)), "product")["shares"]["revenue_share"].iloc[0] == 0.6
    with pytest.raises(ValueError):
        C.pareto(con, EdaFilters(), "brand")


def test_store_strings_reach_the_figures_as_text_and_csv_is_formula_safe():
    from recsys.export import safe_csv
    evil = '<b>x</b><a href="javascript:alert(1)">y</a>'
    top = pd.DataFrame({"brand": [evil, "=HYPERLINK(\"http://x\")"], "buyers": [2, 1], "revenue": [20.0, 10.0],
                        "share_of_segment_revenue": [2 / 3, 1 / 3]})
    fig = C.top_figure(top, "brand", "champions")
    assert all("<" not in y for y in fig.data[0].y) and fig.data[0].y[0].startswith("&lt;b&gt;")
    assert b"'=HYPERLINK" in safe_csv(top)
