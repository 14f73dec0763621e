"""AppTests of the Customers page: every switch and selector moved, tables and figures equal to the library's,
the filters applied; the real REES46 head, a UCI-format store and a store without purchases."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.aggregates import customers as C
from recsys.aggregates.query import EdaFilters, filter_options, open_aggregates
from tests.conftest import REPO

PAGE = "pages/customers.py"


def figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]



def open_page(at):
    at.run()
    return at.switch_page(PAGE).run()


def test_segments_grid_and_value_match_the_library(app_env, demo_artifacts):
    con = open_aggregates(demo_artifacts)
    at = open_page(app_env())
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 4
    summary = C.segment_summary(con, EdaFilters(), 90)
    shown = at.dataframe[0].value
    assert shown["segment"].tolist() == list(C.SEGMENT_NAMES)
    assert shown["buyers"].tolist() == summary["buyers"].tolist()
    assert shown["revenue_share"].tolist() == pytest.approx(summary["revenue_share"].tolist())
    assert {m.label: m.value for m in at.metric}["Buyers"].replace(",", "") in (str(summary["buyers"].sum()),
                                                                               f"{summary['buyers'].sum()/1e3:.0f}k")
    # the demo store spans 61 days: no 90-day value, a 30-day one
    assert any("cannot support a 90-day value" in i.value for i in at.info)
    at.button_group(key="cust_horizon").set_value(30).run()
    assert not at.exception and not at.error
    s30 = C.segment_summary(con, EdaFilters(), 30)
    clv = at.dataframe[1].value
    assert clv["expected_value_30d"].tolist() == pytest.approx(s30["expected_value_30d"].tolist(), nan_ok=True)
    assert s30["expected_value_30d"].notna().any()
    grid = C.rf_grid(con, EdaFilters())
    heat = figures(at)[1]["data"][0]
    assert heat["z"] == grid.sort_values(["r", "f"])["buyers"].to_numpy().reshape(5, 5).tolist()
    at.button_group(key="cust_rf_by").set_value("revenue").run()
    assert sum(figures(at)[1]["data"][0]["z"], []) == pytest.approx(grid.sort_values(["r", "f"])["revenue"].tolist())


def test_segment_selector_and_pareto_switch(app_env, demo_artifacts):
    con = open_aggregates(demo_artifacts)
    at = open_page(app_env())
    for segment in ("champions", "lost", "need attention"):
        at.selectbox(key="cust_segment").set_value(segment).run()
        assert not at.exception and not at.error
        top = C.segment_top(con, EdaFilters(), segment)
        if top.empty:
            assert any(segment in i.value for i in at.info)
        else:
            assert f"Top categories of {segment}" in [h.value for h in at.subheader]
            assert figures(at)[2]["data"][0]["x"] == pytest.approx(top["revenue"].tolist())
    for by in C.PARETO_BY:
        at.button_group(key="cust_pareto_by").set_value(by).run()
        assert not at.exception and not at.error
        p = C.pareto(con, EdaFilters(), by)
        assert at.dataframe[-1].value["revenue_share"].tolist() == pytest.approx(p["shares"]["revenue_share"].tolist())
        assert figures(at)[-1]["data"][0]["y"] == pytest.approx(p["curve"]["share_of_revenue"].tolist())
        assert f"Over {p['n']:,} {by}s" in " ".join(c.value for c in at.caption)


def test_filters_apply_and_a_category_shows_brands(app_env, demo_artifacts):
    con = open_aggregates(demo_artifacts)
    opts = filter_options(con)
    at = open_page(app_env())
    cat = opts["categories"][0]
    at.selectbox(key="cat").set_value(cat).run()
    assert not at.exception and not at.error
    f = EdaFilters(category=cat)
    assert at.dataframe[0].value["buyers"].tolist() == C.segment_summary(con, f, 90)["buyers"].tolist()
    at.selectbox(key="cust_segment").set_value("champions").run()
    top = C.segment_top(con, f, "champions")
    assert "brand" in top.columns and not at.exception
    first = opts["first_day"]
    at.date_input(key="dates").set_value((first, first.replace(day=14))).run()
    assert not at.exception and not at.error
    f = EdaFilters(first, first.replace(day=14), cat)
    assert at.dataframe[0].value["buyers"].tolist() == C.segment_summary(con, f, 90)["buyers"].tolist()
    assert str(first.replace(day=14)) in at.caption[0].value  # the reference day follows the range


def test_the_real_head_and_a_uci_store(head_artifacts, wholesale_artifacts, monkeypatch):
    from streamlit.testing.v1 import AppTest
    for root in (head_artifacts, wholesale_artifacts):
        monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
        at = open_page(AppTest.from_file(str(REPO / "app.py"), default_timeout=60))
        assert not at.exception and not at.error, root
        for by in C.PARETO_BY:
            at.button_group(key="cust_pareto_by").set_value(by).run()
            assert not at.exception and not at.error, (root, by)
        con = open_aggregates(root)
        assert at.dataframe[0].value["buyers"].tolist() == C.segment_summary(con, EdaFilters(), 90)["buyers"].tolist()


def test_the_wholesale_year_supports_a_90_day_value(wholesale_artifacts, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(wholesale_artifacts))
    at = open_page(AppTest.from_file(str(REPO / "app.py"), default_timeout=60))
    s = C.segment_summary(open_aggregates(wholesale_artifacts), EdaFilters(), 90)
    assert s["expected_value_90d"].notna().any()  # a year of re-bought staples
    assert at.dataframe[1].value["expected_value_90d"].tolist() == pytest.approx(
        s["expected_value_90d"].tolist(), nan_ok=True)


def test_a_store_without_purchases_says_so(no_purchase_artifacts, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(no_purchase_artifacts))
    at = open_page(AppTest.from_file(str(REPO / "app.py"), default_timeout=60))
    assert not at.exception and not at.error
    assert at.info and "No purchases" in at.info[0].value and not at.get("plotly_chart")
