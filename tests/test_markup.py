"""Store strings in Plotly figures are shown as text: Plotly reads a subset of HTML (``<b>``, ``<a href>``,
``<span style>``, ``<br>``, ``<sub>``...) in tick labels, legends, hover text, titles and annotations, so a brand
``<b>x</b><a href="javascript:alert(1)">y</a>`` must reach a figure escaped and be drawn literally."""
from __future__ import annotations

import re
from typing import Any, Iterator

import pandas as pd
import pytest

from recsys.aggregates import catalog as C
from recsys.aggregates import charts
from recsys.aggregates import funnel as F
from recsys.aggregates import temporal as T
from recsys.aggregates import users as U
from recsys.aggregates.query import EdaFilters, open_aggregates
from recsys.aggregates.stage import build_aggregates_stage

EVIL_BRAND = '<b>x</b><a href="javascript:alert(1)">y</a>'
EVIL_CAT = '<span style="color:red">c</span><br><sub>s</sub><i>'
LITERAL_BRAND = "R&D &lt;i&gt; &amp; co"  # entities in the data itself stay as typed, not decoded
STORE_STRINGS = (EVIL_BRAND, EVIL_CAT, LITERAL_BRAND)
# the tags Plotly's pseudo-HTML acts on (src/lib/svg_text_utils.js)
PLOTLY_TAG = re.compile(r"<\s*/?\s*(b|i|em|a|span|br|sub|sup|s|u)\b", re.IGNORECASE)
_ENTITIES = {"mu": "\u03bc", "amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "times": "\xd7", "plusmn": "\xb1",
             "deg": "\xb0"}


def shown(text: str) -> str:
    """What Plotly draws for a tag-free string: its entities decoded once, as svg_text_utils.convertEntities."""
    def one(m: re.Match) -> str:
        r = m.group(1)
        if r.startswith("#"):
            return chr(int(r[2:], 16) if r[1] == "x" else int(r[1:]))
        return _ENTITIES.get(r, m.group(0))
    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", one, text)


def strings(obj: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a figure dict with its path (the layout template, Plotly's own, left out)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if path == "layout" and k == "template":
                continue
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from strings(v, f"{path}[{i}]")
    elif hasattr(obj, "tolist"):  # numpy arrays (customdata, x/y values)
        yield from strings(obj.tolist(), path)
    elif isinstance(obj, str):
        yield path, obj


def assert_plain(fig) -> set[str]:
    """No store string reaches the figure as markup; returns what Plotly draws for every text field."""
    drawn = set()
    for path, s in strings(fig.to_dict()):
        if path.endswith("template"):  # our own hover/text templates: markup allowed, store text never
            assert not any(part in s for part in ("javascript", "color:red", "R&D")), (path, s)
            continue
        assert not PLOTLY_TAG.search(s), (path, s)
        drawn.add(shown(s))
    return drawn


def _product(pid: int, cat: str, brand: str, price: float) -> tuple:
    return pid, pid * 10, cat, brand, price


@pytest.fixture(scope="module")
def evil_con(tmp_path_factory):
    from test_eda import EVENTS, write_events_stage
    swap = {1: _product(1, "electronics.smartphone", EVIL_BRAND, 100.0),
            2: _product(2, "electronics.audio.headphone", LITERAL_BRAND, 50.0),
            3: _product(3, f"{EVIL_CAT}.kettle", "bosch", 20.0)}
    root = tmp_path_factory.mktemp("eda-markup")
    write_events_stage(root, [(t, et, swap[p[0]], u, s) for t, et, p, u, s in EVENTS])
    build_aggregates_stage(root)
    return open_aggregates(root)


def eda_figures(con) -> dict[str, Any]:
    """Every EDA figure builder on the hostile store."""
    f = EdaFilters()
    return {
        "funnel": charts.funnel(F.funnel_steps(con, f)),
        "rates_by_brand": charts.rates_by(F.funnel_by(con, f, dim="brand"), "brand", "t", "brand"),
        "rates_by_category": charts.rates_by(F.funnel_by(con, f, dim="category_top"), "category_top", "t", "cat"),
        "rates_by_month": charts.rates_by(F.funnel_by_month(con, f), "month", "t", "month"),
        "session_funnel": charts.session_funnel(F.session_funnel(con, f)),
        "by_hour": charts.by_hour(T.by_hour(con, f)),
        "by_weekday": charts.by_weekday(T.by_weekday(con, f)),
        "heatmap": charts.heatmap(T.hour_weekday(con, f), "events"),
        "daily_trend": charts.daily_trend(T.daily_trend(con, f)),
        "month_bars": charts.month_bars(T.month_comparison(con, f)),
        "top_brands": charts.top_bars(C.top_n(con, f, dim="brand", by="views"), "brand", "views", "brands"),
        "top_categories": charts.top_bars(C.top_n(con, f, dim="category_code", by="revenue"), "category_code",
                                          "revenue", "categories"),
        "treemap": charts.treemap(C.category_tree(con, f)),
        "price_boxes": charts.price_boxes(C.price_distribution(con, f)),
        "price_bands": charts.price_bands(C.conversion_by_price_band(con, f)),
        "histogram": charts.histogram(U.events_per_session(con, f), "t", "events"),
        "purchases_per_user": charts.purchases_per_user(U.purchases_per_user(con, f)),
        "new_vs_returning": charts.new_vs_returning(U.new_vs_returning(con, f)),
    }


def test_plotly_text_escapes_markup_and_keeps_numbers():
    assert charts.plotly_text(EVIL_BRAND) == "&lt;b&gt;x&lt;/b&gt;&lt;a href=\"javascript:alert(1)\"&gt;y&lt;/a&gt;"
    for s in STORE_STRINGS:
        assert shown(charts.plotly_text(s)) == s and not PLOTLY_TAG.search(charts.plotly_text(s))
    assert charts.plotly_text(7) == 7 and charts.plotly_text(None) is None and charts.plotly_text(2.5) == 2.5


def test_every_eda_figure_shows_store_strings_as_text(evil_con):
    figs = eda_figures(evil_con)
    drawn = {name: assert_plain(fig) for name, fig in figs.items()}
    for name in ("rates_by_brand", "top_brands"):
        assert {EVIL_BRAND, LITERAL_BRAND} <= drawn[name], name
    assert EVIL_CAT in drawn["rates_by_category"]
    for name in ("top_categories", "price_boxes"):
        assert f"{EVIL_CAT}.kettle" in drawn[name], name
    assert {EVIL_CAT, f"{EVIL_CAT}.kettle", "kettle"} <= drawn["treemap"]
    tree = figs["treemap"].data[0]
    assert set(tree.parents) - {""} <= set(tree.ids)  # escaping keeps the hierarchy consistent
    # numbers stay numbers
    assert all(isinstance(v, (int, float)) for v in figs["top_brands"].data[0].x)


def test_recommender_figures_show_store_strings_as_text():
    from ui.recommender import category_mix_figure, timeline_figure
    tl = pd.DataFrame({"event_time": pd.to_datetime(["2019-10-01 10:00", "2019-10-01 11:00"], utc=True),
                       "event_type": ["view", "purchase"], "product_id": [1, 2], "brand": [EVIL_BRAND, LITERAL_BRAND],
                       "category_code": [f"{EVIL_CAT}.kettle", "electronics.smartphone"], "price": [1.0, 2.0]})
    drawn = assert_plain(timeline_figure(tl))
    assert {EVIL_BRAND, LITERAL_BRAND, f"{EVIL_CAT}.kettle"} <= drawn
    lst = pd.DataFrame({"product_id": [1, 2, 3], "category": [EVIL_CAT, EVIL_CAT, "unknown_category"],
                        "category_id": [10, 10, 123456789], "score": [0.9, 0.8, 0.7]})
    fig = category_mix_figure(lst, "Category mix")
    assert EVIL_CAT in assert_plain(fig)
    assert sorted(fig.data[0].x) == [1, 2]


def test_affinity_and_evaluation_figures_show_store_strings_as_text():
    from ui.affinity import complements_figure
    from ui.evaluation import metric_bars
    m = pd.DataFrame([[1.5, None], [None, 2.0]], index=[EVIL_CAT, LITERAL_BRAND], columns=[EVIL_BRAND, "kitchen"])
    assert {EVIL_CAT, LITERAL_BRAND, EVIL_BRAND} <= assert_plain(complements_figure(m))
    sel = pd.DataFrame({"model": ["popular", "two_tower"], "metric": "ndcg", "k": 10, "value": [0.1, 0.2],
                        "ci_low": [0.05, 0.15], "ci_high": [0.15, 0.25], "n_users": [100, 100]})
    assert EVIL_BRAND in assert_plain(metric_bars(sel, "ndcg", 10, {"popular": EVIL_BRAND}))


@pytest.mark.browser
def test_chromium_draws_the_escaped_names_literally(evil_con, browser):
    """Plotly.js itself (the bundled plotly.min.js, offline): tick labels read the original strings, and no <a> or
    <b> element is created from the data."""
    fig = eda_figures(evil_con)["top_brands"]
    fig.update_layout(width=900, height=400)
    page = browser.new_page()
    try:
        page.set_content(fig.to_html(include_plotlyjs=True, full_html=True))
        page.locator(".ytick text").first.wait_for(timeout=30_000)
        ticks = page.eval_on_selector_all(".ytick text", "els => els.map(e => e.textContent)")
        assert EVIL_BRAND in ticks and LITERAL_BRAND in ticks
        assert page.locator("svg a, tspan[style*='bold']").count() == 0
    finally:
        page.close()
