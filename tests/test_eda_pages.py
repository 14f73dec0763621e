"""AppTests of the Explore pages: every page draws its charts, applies the shared filters, reads them from the URL,
and answers an empty selection or a store without carts with a plain message."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from ui.eda import compact
from recsys.aggregates import funnel as F
from recsys.aggregates.query import EdaFilters, filter_options, open_aggregates
from recsys.aggregates.stage import build_aggregates_stage

REPO = Path(__file__).resolve().parents[1]
PAGES = {"funnel": 5, "temporal": 5, "brands_categories": 5, "users_sessions": 4}  # page -> charts drawn


def titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def open_page(at, page: str):
    at.run()
    return at.switch_page(f"pages/{page}.py").run()


@pytest.fixture(scope="module")
def demo_options(demo_artifacts):
    build_aggregates_stage(demo_artifacts)  # no-op when build() already ran the stage
    con = open_aggregates(demo_artifacts)
    return con, filter_options(con)


@pytest.mark.parametrize("page", list(PAGES))
def test_page_draws_and_follows_the_filters(app_env, demo_options, page):
    con, opts = demo_options
    at = open_page(app_env(), page)
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == PAGES[page] and all(titles(at))
    cat = opts["categories"][0]
    at.selectbox(key="cat").set_value(cat).run()
    brand = at.selectbox(key="brand").options[1]
    at.selectbox(key="brand").set_value(brand).run()
    first = opts["first_day"]
    at.date_input(key="dates").set_value((first, first + dt.timedelta(days=6))).run()
    assert not at.exception and not at.error
    assert cat in at.caption[0].value and brand in at.caption[0].value
    if not at.info:  # a narrow slice may legitimately be empty; then the page says so instead of drawing
        assert len(at.get("plotly_chart")) == PAGES[page]


def test_funnel_numbers_match_the_library(app_env, demo_options):
    con, opts = demo_options
    at = open_page(app_env(), "funnel")
    cat = opts["categories"][1]
    at.selectbox(key="cat").set_value(cat).run()
    metrics = {m.label: m.value for m in at.metric}
    t = F.funnel_totals(con, EdaFilters(category=cat))
    assert metrics["Views"] == compact(t["views"]) and metrics["Purchases"] == compact(t["purchases"])
    months = F.funnel_by_month(con, EdaFilters(category=cat))
    assert at.dataframe[0].value["views"].tolist() == months["views"].tolist()
    assert any(b.label == "Download funnel_by_month.csv" for b in at.get("download_button"))


def test_filters_are_read_from_the_url(app_env, demo_options):
    con, opts = demo_options
    at = app_env()
    cat = opts["categories"][0]
    day = opts["first_day"] + dt.timedelta(days=2)
    at.query_params["cat"] = cat
    at.query_params["dates"] = [day.isoformat(), day.isoformat()]
    at = open_page(at, "funnel")
    assert not at.exception
    assert at.selectbox(key="cat").value == cat
    views = F.funnel_totals(con, EdaFilters(day, day, cat))["views"]
    assert {m.label: m.value for m in at.metric}["Views"] == compact(views)


def test_widget_controls_of_pages(app_env):
    at = open_page(app_env(), "brands_categories")
    at.selectbox(key="rank_by").set_value("view_to_purchase").run()
    at.slider(key="top_n").set_value(5).run()
    assert not at.exception and "conversion" in titles(at)[0]
    at.number_input(key="min_views").set_value(10**6).run()  # nothing has a million views: a message, no error
    assert not at.exception and at.info
    at = open_page(app_env(), "temporal")
    at.button_group(key="heat_measure").set_value("revenue").run()
    assert not at.exception and "Revenue by weekday and hour of day (UTC)" in titles(at)


@pytest.fixture()
def tiny_app(tmp_path, monkeypatch):
    """The app over a tiny store without carts (views and purchases only)."""
    from streamlit.testing.v1 import AppTest
    from test_eda import EVENTS, write_events_stage
    write_events_stage(tmp_path, [e for e in EVENTS if e[1] in ("view", "purchase")])
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path))
    return lambda: AppTest.from_file(str(REPO / "app.py"), default_timeout=60)


@pytest.mark.parametrize("page", list(PAGES))
def test_store_without_carts_and_empty_range(tiny_app, page):
    at = open_page(tiny_app(), page)  # the aggregates stage is built on first use
    assert not at.exception and not at.error and at.get("plotly_chart")
    at.date_input(key="dates").set_value((dt.date(2019, 10, 10), dt.date(2019, 10, 20))).run()
    assert not at.exception and not at.error
    assert "No " in at.info[0].value and not at.get("plotly_chart")


def notices(at) -> list[str]:
    """The warnings and infos of a run as read (Markdown escapes removed)."""
    return [n.value.replace("\\", "") for n in [*at.warning, *at.info]]


def test_a_deep_link_is_clamped_with_a_notice_and_kept_across_pages(app_env, demo_options):
    con, opts = demo_options
    first, day = opts["first_day"], dt.timedelta(days=1)
    cat = opts["categories"][1]
    at = app_env()
    at.query_params["dates"] = [(first - 5 * day).isoformat(), (first + 3 * day).isoformat()]  # partly before the data
    at.query_params["cat"] = cat
    at = open_page(at, "funnel")
    assert not at.exception and not at.error
    assert at.date_input(key="dates").value == (first, first + 3 * day)
    assert at.selectbox(key="cat").value == cat
    assert any(f"clamped to {first} → {first + 3 * day}" in n and str(first - 5 * day) in n for n in notices(at))
    views = F.funnel_totals(con, EdaFilters(first, first + 3 * day, cat))["views"]
    assert {m.label: m.value for m in at.metric}["Views"] == compact(views)

    at.switch_page("pages/temporal.py").run()  # the sidebar's Temporal link
    assert not at.exception
    assert at.date_input(key="dates").value == (first, first + 3 * day) and at.selectbox(key="cat").value == cat
    assert f"{first} → {first + 3 * day} · {cat}" in at.caption[0].value.replace("\\", "")
    brand = at.selectbox(key="brand").options[1]
    at.selectbox(key="brand").set_value(brand).run()
    assert not [n for n in notices(at) if "clamped" in n]  # the notice goes once the user picks filters

    for page in ("users_sessions", "brands_categories", "funnel"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception
        assert (at.date_input(key="dates").value, at.selectbox(key="cat").value, at.selectbox(key="brand").value) \
            == ((first, first + 3 * day), cat, brand), page
    at.switch_page("pages/overview.py").run()
    at.switch_page("pages/temporal.py").run()  # through a page without the filters
    assert at.selectbox(key="brand").value == brand and at.date_input(key="dates").value == (first, first + 3 * day)


def test_bad_link_values_give_notices_and_the_defaults(app_env, demo_options):
    con, opts = demo_options
    first, last = opts["first_day"], opts["last_day"]
    script = "<script>alert(1)</script>"
    at = app_env()
    at.query_params["dates"] = "garbage"
    at.query_params["cat"] = script
    at.query_params["brand"] = "**bold** ![t](http://host/x.png)"
    at = open_page(at, "funnel")
    assert not at.exception and not at.error
    assert at.date_input(key="dates").value == (first, last)
    assert at.selectbox(key="cat").value == "All categories" and at.selectbox(key="brand").value == "All brands"
    said = notices(at)
    assert any("“garbage”" in n and "all days" in n for n in said)
    assert any(script in n and "all categories" in n for n in said)
    assert any("**bold**" in n and "all brands" in n for n in said)
    # the strings are shown as text: Markdown-escaped, never raw HTML or Markdown
    shown = [e.value for kind in ("warning", "info", "markdown", "caption") for e in at.get(kind)]
    hostile = [v for v in shown if "script" in v or "bold" in v]
    assert len(hostile) >= 2 and not any(re.search(r"(?<!\\)[<>*!\[\]()]", v) for v in hostile), hostile
    assert not at.get("html")


def test_a_link_entirely_outside_the_data_shows_all_days(app_env, demo_options):
    con, opts = demo_options
    first, last = opts["first_day"], opts["last_day"]
    at = app_env()
    at.query_params["dates"] = ["2001-01-01", "2001-01-31"]
    at = open_page(at, "temporal")
    assert not at.exception and at.date_input(key="dates").value == (first, last)
    assert any("outside the data" in n and "all days" in n for n in notices(at))


@pytest.mark.browser
def test_browser_a_deep_link_survives_a_click_on_another_page(app_server, page, demo_options):
    """The issue's steps in Chromium: open /funnel?dates=..&cat=.., click Temporal in the sidebar."""
    con, opts = demo_options
    start, end = opts["first_day"] + dt.timedelta(days=1), opts["first_day"] + dt.timedelta(days=3)
    cat = opts["categories"][1]
    caption = '[data-testid="stMain"] [data-testid="stCaptionContainer"]'
    page.goto(f"{app_server}/funnel?dates={start}&dates={end}&cat={cat}")
    page.get_by_role("heading", name="Funnel").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)
    assert f"{start} → {end} · {cat}" in page.locator(caption).first.inner_text()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Temporal").click()
    page.get_by_role("heading", name="Temporal patterns").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)
    assert f"{start} → {end} · {cat}" in page.locator(caption).first.inner_text()
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('cat') === {cat!r}", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
