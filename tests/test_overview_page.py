"""Overview page (AppTest): events by type, a daily trend and what cleaning did, as Plotly charts with the tables
one click away and links to the pages that explain each number; the figures' labels are store-safe."""
from __future__ import annotations

import json

from recsys.aggregates import overview as oc
from recsys.aggregates.stage import store_kpis
from recsys.ingest.stage import load_quality


def specs(at) -> dict[str, dict]:
    """Plotly figures by their title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def test_overview_draws_types_trend_and_quality_as_charts(app_env, demo_artifacts):
    at = app_env().run()
    assert not at.exception and not at.error
    figs = specs(at)
    assert set(figs) == {"Events by type", "Events and purchases per day (UTC)",
                         "Rows read → dropped by reason → kept", "Missing values filled"}
    k, q = store_kpis(demo_artifacts), load_quality(demo_artifacts)
    types = figs["Events by type"]["data"][0]
    assert types["y"] == ["view", "cart", "purchase", "remove_from_cart"]
    assert types["x"] == [k["views"], k["carts"], k["purchases"], k["removes"]]
    daily = figs["Events and purchases per day (UTC)"]["data"]
    assert sum(daily[0]["y"]) == k["events"] and sum(daily[1]["y"]) == k["purchases"]
    water = figs["Rows read → dropped by reason → kept"]["data"][0]
    assert water["x"][0] == "rows read" and water["x"][-1] == "rows kept" and water["measure"][-1] == "total"
    assert sum(water["y"]) == q["rows_kept"]  # read minus every drop lands on kept
    # the tables are still there, inside expanders
    quality = next(d.value for d in at.dataframe if "step" in d.value.columns)
    assert quality.set_index("step")["rows"]["rows read"] == q["rows_read"]
    assert any("event_type" in d.value.columns for d in at.dataframe)
    labels = [e.label for e in at.expander]
    assert "Events by type (table)" in labels and any(lbl.startswith("Quality tables") for lbl in labels)


def test_overview_links_to_the_pages_that_explain_each_number(app_env):
    at = app_env().run()
    links = {p.proto.page for p in at.get("page_link")}  # the pages' URL names
    assert {"funnel", "temporal", "users_sessions", "data"} <= links, links


def test_a_store_without_views_or_fills_still_draws(app_env, tmp_path):
    """The pure figures cope with a report whose drops and fills are all zero."""
    q = {"rows_read": 5, "rows_kept": 5, "dropped": {"duplicate": 0}, "filled": {"brand_unknown": 0}}
    fig = oc.quality_figure(oc.quality_rows(q))
    assert list(fig.data[0].y) == [5, 0, 0] and oc.quality_fills(q)["rows"].sum() == 0
    assert oc.events_by_type({"events": 0})["share"].tolist() == [0, 0, 0, 0]


def test_labels_from_the_report_are_plotly_text_not_markup():
    q = {"rows_read": 3, "rows_kept": 1, "dropped": {"<b>bold</b>": 1, "<a href='x'>l</a>": 1},
         "filled": {"<i>x</i>": 2}}
    water = oc.quality_figure(oc.quality_rows(q)).data[0]
    assert "dropped: &lt;b&gt;bold&lt;/b&gt;" in water.x and not any("<b>" in x for x in water.x)
    assert oc.fills_figure(oc.quality_fills(q)).data[0].y[0] == "&lt;i&gt;x&lt;/i&gt;"
    assert oc.source_label({"source": "files", "files": ["a.csv", "b.csv"]}) == "a.csv, b.csv"
