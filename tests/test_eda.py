"""EDA aggregates: known answers on a tiny hand-made store, the stage contract, and the real REES46 head."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.aggregates import catalog as C
from recsys.aggregates import charts
from recsys.aggregates import funnel as F
from recsys.aggregates import temporal as T
from recsys.aggregates import users as U
from recsys import schema as S
from recsys.artifacts import ArtifactError, write_json
from recsys.aggregates.query import EdaFilters, brands_for, filter_options, open_aggregates
from recsys.aggregates.stage import aggregates_up_to_date, build_aggregates_stage

PHONE = (1, 10, "electronics.smartphone", "samsung", 100.0)
HEADPHONE = (2, 20, "electronics.audio.headphone", "apple", 50.0)
KETTLE = (3, 30, "appliances.kitchen.kettle", "bosch", 20.0)

# (UTC time, event type, product, user, session)
EVENTS = [
    ("2019-10-01 10:00:00", "view", PHONE, 1, "s1"),
    ("2019-10-01 10:00:30", "cart", PHONE, 1, "s1"),
    ("2019-10-01 10:01:40", "purchase", PHONE, 1, "s1"),       # s1: 3 events, 100 s, bought
    ("2019-10-02 23:59:00", "view", HEADPHONE, 1, "s2"),
    ("2019-10-03 00:00:10", "purchase", HEADPHONE, 1, "s2"),   # s2: crosses midnight UTC, 70 s, bought
    ("2019-10-01 10:05:00", "view", PHONE, 2, "s3"),
    ("2019-10-01 10:05:05", "cart", PHONE, 2, "s3"),
    ("2019-10-01 10:05:55", "remove_from_cart", PHONE, 2, "s3"),  # s3: abandoned cart, 55 s
    ("2019-11-01 08:00:00", "view", KETTLE, 3, "s4"),          # s4: one event
    ("2019-11-02 09:00:00", "view", KETTLE, 2, "s5"),
    ("2019-11-02 09:00:20", "view", PHONE, 2, "s5"),
    ("2019-11-02 09:01:00", "purchase", KETTLE, 2, "s5"),      # s5: two categories, 60 s, bought the kettle
]


def write_events_stage(root, events, built_at: str = "2026-01-01T00:00:00Z") -> None:
    """A minimal events stage (Parquet in the contract's schema plus a manifest) holding ``events``."""
    d = root / "events"
    d.mkdir(parents=True, exist_ok=True)
    rows = [{S.EVENT_TIME: pd.Timestamp(t, tz="UTC"), S.EVENT_TYPE: et, S.PRODUCT_ID: p[0], S.CATEGORY_ID: p[1],
             S.CATEGORY_CODE: p[2], S.BRAND: p[3], S.PRICE: p[4], S.USER_ID: u, S.USER_SESSION: s}
            for t, et, p, u, s in events]
    pq.write_table(pa.Table.from_pylist(rows, schema=S.ARROW_SCHEMA), d / "events.parquet")
    write_json(d / "manifest.json", {"stage": "events", "input_fingerprint": built_at, "built_at": built_at})


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    root = tmp_path_factory.mktemp("eda-tiny")
    write_events_stage(root, EVENTS)
    build_aggregates_stage(root)
    return open_aggregates(root)


ALL = EdaFilters()


def test_funnel_counts_and_rates(con):
    t = F.funnel_totals(con, ALL)
    assert (t["views"], t["carts"], t["purchases"], t["removes"]) == (6, 2, 3, 1)
    assert t["revenue"] == pytest.approx(170.0)
    assert t["cart_rate"] == pytest.approx(2 / 6) and t["purchase_rate"] == pytest.approx(1.5)
    assert t["view_to_purchase"] == pytest.approx(0.5) and t["removes_per_cart"] == pytest.approx(0.5)
    steps = F.funnel_steps(con, ALL)
    assert steps["events"].tolist() == [6, 2, 3]
    assert steps["from_previous"].tolist() == pytest.approx([1.0, 2 / 6, 1.5])


def test_funnel_per_month_and_dimension(con):
    m = F.funnel_by_month(con, ALL).set_index("month")
    assert m.loc["2019-10", ["views", "carts", "purchases", "removes"]].tolist() == [3, 2, 2, 1]
    assert m.loc["2019-11", ["views", "carts", "purchases"]].tolist() == [3, 0, 1]
    assert m.loc["2019-11", "revenue"] == pytest.approx(20.0) and m.loc["2019-11", "purchase_rate"] == 0.0
    cats = F.funnel_by(con, ALL, "category_top").set_index("category_top")
    assert cats.loc["electronics", ["views", "purchases"]].tolist() == [4, 2]
    assert cats.loc["appliances", ["views", "purchases"]].tolist() == [2, 1]
    brands = F.funnel_by(con, ALL, "brand", n=1)
    assert brands["brand"].tolist() == ["samsung"] and brands["views"].iloc[0] == 3
    with pytest.raises(ValueError, match="unknown dimension"):
        F.funnel_by(con, ALL, "colour")


def test_session_funnel_and_abandonment(con):
    s = F.session_funnel(con, ALL).set_index("step")["sessions"]
    assert s.tolist() == [5, 5, 2, 3, 1]
    ab = F.cart_abandonment(con, ALL)
    assert ab == {"cart_sessions": 2, "cart_and_purchase": 1, "abandoned": 1, "abandonment_rate": 0.5,
                  "cart_and_remove": 1}
    # a brand slice counts only that brand's events: s5 viewed samsung but bought bosch
    samsung = F.session_funnel(con, EdaFilters(brand="samsung")).set_index("step")["sessions"]
    assert samsung.tolist() == [3, 3, 2, 1, 1]
    both = F.session_funnel(con, EdaFilters(category="appliances", brand="bosch")).set_index("step")["sessions"]
    assert both.tolist() == [2, 2, 0, 1, 0]


def test_date_filter_is_inclusive_utc_days(con):
    oct1 = EdaFilters(start=dt.date(2019, 10, 1), end=dt.date(2019, 10, 1))
    assert F.funnel_totals(con, oct1)["purchases"] == 1
    oct3 = EdaFilters(start=dt.date(2019, 10, 3), end=dt.date(2019, 10, 3))
    assert F.funnel_totals(con, oct3)["purchases"] == 1  # 00:00:10 UTC belongs to Oct 3
    with pytest.raises(ValueError, match="swap"):
        EdaFilters(start=dt.date(2019, 10, 3), end=dt.date(2019, 10, 1))


def test_hour_buckets_are_utc(con):
    h = T.by_hour(con, ALL).set_index("hour_utc")
    assert len(h) == 24
    assert h["events"].to_dict() == {**{i: 0 for i in range(24)}, 10: 6, 23: 1, 0: 1, 8: 1, 9: 3}
    assert h.loc[[0, 9, 10], "purchases"].tolist() == [1, 1, 1]
    heat = T.hour_weekday(con, ALL)
    assert heat.loc["Tue", 10] == 6 and heat.loc["Wed", 23] == 1 and heat.loc["Thu", 0] == 1
    assert heat.loc["Sat", 9] == 3 and heat.to_numpy().sum() == 12
    assert T.hour_weekday(con, ALL, "revenue").loc["Tue", 10] == pytest.approx(100.0)


def test_hours_stay_utc_whatever_the_machine_time_zone(con, monkeypatch):
    import time
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert T.by_hour(con, ALL).set_index("hour_utc").loc[10, "events"] == 6
        assert T.daily_trend(con, ALL)["day"].dt.strftime("%m-%d").iloc[0] == "10-01"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_weekday_averages_and_daily_trend(con):
    w = T.by_weekday(con, ALL).set_index("weekday")
    assert w["events"].tolist() == [0, 6, 1, 1, 1, 3, 0]
    assert w.loc["Tue", "days"] == 5  # Oct 1 -> Nov 2 holds five Tuesdays
    assert w.loc["Tue", "events_per_day"] == pytest.approx(6 / 5)
    d = T.daily_trend(con, ALL)
    assert d["day"].dt.strftime("%m-%d").tolist() == ["10-01", "10-02", "10-03", "11-01", "11-02"]
    assert d["events"].tolist() == [6, 1, 1, 1, 3] and d["revenue"].sum() == pytest.approx(170.0)
    m = T.month_comparison(con, ALL).set_index("month")
    assert m.loc["2019-10", "active_days"] == 3 and m.loc["2019-10", "events_per_day"] == pytest.approx(8 / 3)


def test_session_lengths_and_durations(con):
    st = U.session_stats(con, ALL)
    assert st["sessions"] == 5 and st["events_per_session"] == pytest.approx(12 / 5)
    assert st["mean_duration_s"] == pytest.approx((100 + 70 + 55 + 0 + 60) / 5)
    assert st["single_event_share"] == pytest.approx(0.2) and st["purchase_share"] == pytest.approx(0.6)
    ev = U.events_per_session(con, ALL).set_index("bucket")["sessions"]
    assert ev[["1", "2", "3"]].tolist() == [1, 1, 3] and ev.sum() == 5
    dur = U.session_durations(con, ALL).set_index("bucket")
    assert dur.loc[["0 s", "30-60 s", "1-2 min"], "sessions"].tolist() == [1, 1, 3] and dur["sessions"].sum() == 5
    assert dur.loc["1-2 min", "purchase_share"] == pytest.approx(1.0)
    # restricted to samsung, s5 is one event at 09:00:20: duration 0
    assert U.session_stats(con, EdaFilters(brand="samsung"))["mean_duration_s"] == pytest.approx((100 + 55 + 0) / 3)


def test_repeat_buyers_and_purchases_per_user(con):
    r = U.repeat_buyers(con, ALL)
    assert (r["buyers"], r["repeat_buyers"]) == (2, 1)
    assert r["repeat_share"] == 0.5 and r["repeat_revenue_share"] == pytest.approx(150 / 170)
    ppu = U.purchases_per_user(con, ALL).set_index("purchases")["buyers"]
    assert ppu["1"] == 1 and ppu["2"] == 1 and ppu.sum() == 2
    # within Oct 1 alone user 1 bought in one session only, user 2 did not buy
    r1 = U.repeat_buyers(con, EdaFilters(start=dt.date(2019, 10, 1), end=dt.date(2019, 10, 1)))
    assert (r1["buyers"], r1["repeat_buyers"]) == (1, 0)
    # a range that drops Nov 2 (user 2's purchase) goes through the per-day buyer table
    r2 = U.repeat_buyers(con, EdaFilters(start=dt.date(2019, 10, 1), end=dt.date(2019, 11, 1)))
    assert (r2["buyers"], r2["repeat_buyers"], r2["revenue"]) == (1, 1, pytest.approx(150.0))
    wide = EdaFilters(start=dt.date(2019, 9, 1), end=dt.date(2019, 12, 31))  # covers the data: per-buyer totals
    assert U.repeat_buyers(con, wide) == r
    top = U.top_users(con, ALL)
    assert top["user_id"].tolist() == [1, 2] and top["revenue"].tolist() == pytest.approx([150.0, 20.0])
    assert top.loc[0, "purchase_sessions"] == 2 and top.loc[0, "purchase_days"] == 2
    assert top.loc[1, "sessions_all_days"] == 2 and top.loc[1, "views_all_days"] == 3  # user 2: s3 and s5
    by_day = U.top_users(con, EdaFilters(start=dt.date(2019, 10, 2), end=dt.date(2019, 11, 2)), by="purchases")
    assert by_day["user_id"].tolist() == [1, 2] and by_day["first_purchase"].astype(str).tolist() == [
        "2019-10-02", "2019-11-02"]


def test_new_vs_returning_users(con):
    nr = U.new_vs_returning(con, ALL)
    nr["d"] = nr["day"].dt.strftime("%m-%d")
    assert nr[["d", "active_users", "new_users", "returning_users", "buyers"]].values.tolist() == [
        ["10-01", 2, 2, 0, 1], ["10-02", 1, 0, 1, 1], ["11-01", 1, 1, 0, 0], ["11-02", 1, 0, 1, 1]]
    app = U.new_vs_returning(con, EdaFilters(category="appliances"))
    assert app["new_users"].tolist() == [1, 1]  # user 2's first appliance session is on Nov 2


def test_brands_categories_and_prices(con):
    top = C.top_n(con, ALL, "brand", "revenue")
    assert top["brand"].tolist() == ["samsung", "apple", "bosch"]
    conv = C.top_n(con, ALL, "brand", "view_to_purchase", min_views=2)
    assert conv["brand"].tolist() == ["bosch", "samsung"]  # apple has one view
    tree = C.category_tree(con, ALL).set_index("id")
    assert len(tree) == 7 and tree.loc["electronics", "views"] == 4
    assert tree.loc["electronics.audio.headphone", "parent"] == "electronics.audio"
    assert tree.loc["appliances", "parent"] == "" and tree.loc["appliances.kitchen", "purchases"] == 1
    bands = C.conversion_by_price_band(con, ALL).set_index("band")
    assert bands.loc["$100-250", ["views", "purchases"]].tolist() == [3, 1]
    assert bands.loc["$10-25", ["views", "purchases"]].tolist() == [2, 1]
    hist = C.price_histogram(con, ALL).set_index("price_bin")
    assert hist["views"].sum() == 6 and hist.loc[20, ["views", "purchases"]].tolist() == [3, 1]  # $100-126
    assert hist.loc[20, "price_from"] == pytest.approx(100.0)
    prices = C.price_distribution(con, ALL).set_index("category_code")
    assert prices.loc["electronics.smartphone", "views"] == 3
    assert 100 <= prices.loc["electronics.smartphone", "median"] < 126  # inside the $100-126 log bin


def test_empty_filters_give_empty_results_not_errors(con):
    none = EdaFilters(brand="no-such-brand")
    assert F.funnel_totals(con, none)["views"] == 0
    assert F.session_funnel(con, none)["sessions"].sum() == 0
    assert T.daily_trend(con, none).empty and T.by_hour(con, none)["events"].sum() == 0
    assert C.category_tree(con, none).empty and C.price_distribution(con, none).empty
    assert U.top_users(con, none).empty and U.repeat_buyers(con, none)["buyers"] == 0
    for fig in (charts.funnel(F.funnel_steps(con, none)), charts.daily_trend(T.daily_trend(con, none)),
                charts.treemap(C.category_tree(con, none)), charts.heatmap(T.hour_weekday(con, none), "events")):
        assert fig.layout.title.text


def test_filter_options(con):
    o = filter_options(con)
    assert (o["first_day"], o["last_day"]) == (dt.date(2019, 10, 1), dt.date(2019, 11, 2))
    assert o["categories"] == ["electronics", "appliances"]
    assert brands_for(o, None) == ["samsung", "bosch", "apple"] and brands_for(o, "appliances") == ["bosch"]


def test_stage_skips_when_up_to_date_and_rebuilds_on_new_events(tmp_path):
    write_events_stage(tmp_path, EVENTS)
    assert not aggregates_up_to_date(tmp_path)
    m, built = build_aggregates_stage(tmp_path)
    assert built and m["rows"]["hourly"] > 0 and set(m["files"]) >= {"hourly.parquet", "hourly_nb.parquet",
                                                                       "sessions.parquet", "users.parquet"}
    assert aggregates_up_to_date(tmp_path) and build_aggregates_stage(tmp_path)[1] is False
    write_events_stage(tmp_path, EVENTS[:3], built_at="2026-01-02T00:00:00Z")
    assert not aggregates_up_to_date(tmp_path) and build_aggregates_stage(tmp_path)[1]
    assert F.funnel_totals(open_aggregates(tmp_path), ALL)["views"] == 1


def test_missing_stage_says_how_to_build(tmp_path):
    with pytest.raises(ArtifactError, match="recsys build"):
        open_aggregates(tmp_path)


def test_head_matches_a_direct_count_of_the_csv(head_csv, tmp_path):
    """On the real REES46 head the funnel, sessions, buyers and hours agree with pandas on the raw CSV."""
    from recsys.ingest.stage import build_events
    build_events(tmp_path, [head_csv])
    build_aggregates_stage(tmp_path)
    con = open_aggregates(tmp_path)
    raw = pd.read_csv(head_csv, on_bad_lines="skip")
    raw = raw.dropna(subset=["event_time", "event_type", "product_id", "user_id", "user_session", "price"])
    raw = raw[pd.to_datetime(raw["event_time"], format="%Y-%m-%d %H:%M:%S UTC", errors="coerce").notna()]
    raw = raw.drop_duplicates()
    counts = raw["event_type"].value_counts()
    t = F.funnel_totals(con, ALL)
    assert (t["views"], t["carts"], t["purchases"]) == (counts.get("view", 0), counts.get("cart", 0),
                                                        counts.get("purchase", 0))
    bought = raw[raw["event_type"] == "purchase"]
    assert t["revenue"] == pytest.approx(bought["price"].sum())
    assert U.session_stats(con, ALL)["sessions"] == raw.groupby(["user_session", "user_id"]).ngroups
    assert U.repeat_buyers(con, ALL)["buyers"] == bought["user_id"].nunique()
    hours = pd.to_datetime(raw["event_time"], format="%Y-%m-%d %H:%M:%S UTC").dt.hour.value_counts()
    h = T.by_hour(con, ALL).set_index("hour_utc")["events"]
    assert h[h > 0].to_dict() == hours.sort_index().to_dict()
    samsung = raw[raw["brand"] == "samsung"]
    assert F.funnel_totals(con, EdaFilters(brand="samsung"))["purchases"] == (samsung["event_type"] == "purchase").sum()


def test_filters_from_a_link_are_fitted_to_the_data_with_notices(con):
    from recsys.aggregates.filters import filters_from_params, filters_to_params
    o = filter_options(con)  # 2019-10-01 .. 2019-11-02; electronics (samsung, apple), appliances (bosch)
    d = dt.date
    f, notes = filters_from_params({"dates": ["2019-09-20", "2019-10-05"], "cat": "electronics"}, o)
    assert f == EdaFilters(d(2019, 10, 1), d(2019, 10, 5), "electronics") and len(notes) == 1
    assert "2019-09-20" in notes[0] and "clamped to 2019-10-01 → 2019-10-05" in notes[0]
    assert filters_to_params(f, o) == {"dates": ["2019-10-01", "2019-10-05"], "cat": ["electronics"], "brand": []}
    f, notes = filters_from_params({"dates": "2019-10-03..2019-12-31", "brand": "bosch"}, o)  # one joined value
    assert f == EdaFilters(d(2019, 10, 3), d(2019, 11, 2), None, "bosch") and "clamped" in notes[0]
    assert filters_from_params({"dates": "2019-10-04"}, o)[0] == EdaFilters(d(2019, 10, 4), d(2019, 10, 4))
    f, notes = filters_from_params({"dates": ["2019-10-09", "2019-10-02"]}, o)  # reversed: the same days
    assert (f.start, f.end, notes) == (d(2019, 10, 2), d(2019, 10, 9), [])
    f, notes = filters_from_params({"dates": "garbage", "cat": "<script>", "brand": "bosch"}, o)
    assert f == EdaFilters(d(2019, 10, 1), d(2019, 11, 2), None, "bosch") and len(notes) == 2
    assert "“garbage”" in notes[0] and "all days" in notes[0] and "“<script>”" in notes[1]
    f, notes = filters_from_params({"dates": ["2001-01-01", "2001-02-01"], "cat": "appliances", "brand": "apple"}, o)
    assert f == EdaFilters(d(2019, 10, 1), d(2019, 11, 2), "appliances") and len(notes) == 2
    assert "outside the data" in notes[0] and "“apple” has no events in the category “appliances”" in notes[1]
    assert filters_to_params(EdaFilters(d(2019, 10, 1), d(2019, 11, 2)), o) == {"dates": [], "cat": [], "brand": []}
    assert filters_from_params({}, o) == (EdaFilters(d(2019, 10, 1), d(2019, 11, 2)), [])
    long = "x" * 500
    assert len(filters_from_params({"cat": long}, o)[1][0]) < 200  # a notice quotes a long value capped
