"""AppTests of the Retention page: every switch and the curve slider moved, figures equal to the library's, the
filters applied; the real REES46 head, a UCI-format store and a store without purchases."""
from __future__ import annotations

import json

import pytest

from recsys.aggregates import retention as R
from recsys.aggregates.query import EdaFilters, open_aggregates
from tests.conftest import REPO

PAGE = "pages/retention.py"


def figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def open_page(at):
    at.run()
    return at.switch_page(PAGE).run()


def assert_heatmap_matches(at, root, f: EdaFilters, grain: str, basis: str, measure: str) -> None:
    long = R.cohorts(open_aggregates(root), f, grain, basis, measure)
    heat = figures(at)[0]["data"][0]
    pivot = long.pivot(index="cohort", columns="period", values="share").sort_index()
    expected = [[None if v != v else pytest.approx(v) for v in row] for row in pivot.to_numpy()]
    assert heat["z"] == expected
    assert {m.label: m.value for m in at.metric}["Cohorts"] == f"{pivot.shape[0]:,}"


def test_every_switch_draws_what_the_library_computes(app_env, demo_artifacts):
    at = open_page(app_env())
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 2
    assert_heatmap_matches(at, demo_artifacts, EdaFilters(), "week", "first_event", "active")
    for grain, basis, measure in (("week", "first_event", "buying"), ("week", "first_purchase", "buying"),
                                  ("month", "first_purchase", "active"), ("month", "first_event", "active")):
        at.button_group(key="ret_grain").set_value(grain)
        at.button_group(key="ret_basis").set_value(basis)
        at.button_group(key="ret_measure").set_value(measure).run()
        assert not at.exception and not at.error, (grain, basis, measure)
        assert_heatmap_matches(at, demo_artifacts, EdaFilters(), grain, basis, measure)
        title = figures(at)[0]["layout"]["title"]["text"]
        assert R.BASIS_LABELS[basis] in title and grain in title


def test_the_curve_slider_sets_the_cohorts_averaged(app_env, demo_artifacts):
    at = open_page(app_env())
    long = R.cohorts(open_aggregates(demo_artifacts), EdaFilters(), "week", "first_event", "active")
    lengths = R.curve_lengths(long)
    assert len(lengths) > 2
    for last in (lengths[0], lengths[-1]):
        at.select_slider(key="ret_curve_len").set_value(last).run()
        assert not at.exception
        curve = R.average_curve(long, last)
        line = figures(at)[1]["data"][0]
        assert line["x"] == list(range(last + 1)) and line["y"] == pytest.approx(curve["share"].tolist())
        assert f"over the {int(curve['cohorts'].iloc[0])} cohorts" in " ".join(c.value for c in at.caption)


def test_a_category_and_brand_filter_restricts_the_cohorts(app_env, demo_artifacts):
    from recsys.aggregates.query import filter_options
    opts = filter_options(open_aggregates(demo_artifacts))
    at = open_page(app_env())
    cat = opts["categories"][0]
    at.selectbox(key="cat").set_value(cat).run()
    brand = at.selectbox(key="brand").options[1]
    at.selectbox(key="brand").set_value(brand).run()
    assert not at.exception and not at.error
    assert_heatmap_matches(at, demo_artifacts, EdaFilters(category=cat, brand=brand), "week", "first_event",
                           "active")
    first = opts["first_day"]
    at.date_input(key="dates").set_value((first.replace(day=7), first.replace(day=20))).run()
    assert not at.exception and not at.error
    f = EdaFilters(first.replace(day=7), first.replace(day=20), cat, brand)
    if not at.info:
        assert_heatmap_matches(at, demo_artifacts, f, "week", "first_event", "active")
    assert "category or brand filter" in at.caption[0].value


def test_the_real_head_and_a_uci_store(head_artifacts, wholesale_artifacts, monkeypatch):  # noqa: F811
    from streamlit.testing.v1 import AppTest
    for root in (head_artifacts, wholesale_artifacts):
        monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
        at = open_page(AppTest.from_file(str(REPO / "app.py"), default_timeout=60))
        assert not at.exception and not at.error, root
        for basis in R.BASES:
            at.button_group(key="ret_basis").set_value(basis).run()
            assert not at.exception and not at.error, (root, basis)
            if not at.info:
                assert_heatmap_matches(at, root, EdaFilters(), "week", basis, "active")


def test_a_store_without_purchases_says_so(no_purchase_artifacts, monkeypatch):  # noqa: F811
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(no_purchase_artifacts))
    at = open_page(AppTest.from_file(str(REPO / "app.py"), default_timeout=60))
    assert not at.exception and not at.error
    at.button_group(key="ret_measure").set_value("buying").run()
    assert not at.exception and not at.error
    assert all(v in (0, None) for row in figures(at)[0]["data"][0]["z"] for v in row)  # nobody buys
    at.button_group(key="ret_basis").set_value("first_purchase").run()
    assert not at.exception and not at.error
    assert at.info and "need purchases" in at.info[0].value
