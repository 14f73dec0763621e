"""The Overview's tables and Plotly figures: events by type, what cleaning did (rows read, dropped by reason,
filled) and a small daily trend. Pure functions of the stored KPIs, the quality report and the daily frame.

Drop reasons and fills are the ingest's own words, but a quality report is a file: every label goes through
``recsys.aggregates.charts.plotly_text`` like any store string.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from recsys.aggregates.charts import C, UTC, plotly_texts

EVENT_TYPES = (("view", "views"), ("cart", "carts"), ("purchase", "purchases"), ("remove_from_cart", "removes"))
TYPE_COLORS = [C["view"], C["cart"], C["purchase"], C["remove"]]
KEPT, DROPPED, READ, FILLED = "#54A24B", "#E45756", "#4C78A8", "#F58518"


def events_by_type(k: dict[str, Any]) -> pd.DataFrame:
    """event_type, events, share of all events, from the store KPIs."""
    df = pd.DataFrame({"event_type": [t for t, _ in EVENT_TYPES], "events": [int(k.get(c) or 0) for _, c in EVENT_TYPES]})
    df["share"] = df["events"] / max(int(k.get("events") or 0), 1)
    return df


def quality_rows(q: dict[str, Any]) -> pd.DataFrame:
    """step, rows: rows read, one row per drop reason, rows kept (read = kept + every drop)."""
    return pd.DataFrame([{"step": "rows read", "rows": int(q["rows_read"])}]
                        + [{"step": f"dropped: {str(r).replace('_', ' ')}", "rows": int(n)}
                           for r, n in (q.get("dropped") or {}).items()]
                        + [{"step": "rows kept", "rows": int(q["rows_kept"])}])


def quality_fills(q: dict[str, Any]) -> pd.DataFrame:
    """fill, rows: how each missing brand / category_code was filled."""
    return pd.DataFrame([{"fill": str(f).replace("_", " "), "rows": int(n)} for f, n in (q.get("filled") or {}).items()],
                        columns=["fill", "rows"])


def _layout(title: str, **kw: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "margin": {"l": 10, "r": 10, "t": 50, "b": 10}, "height": 300, **kw}


def events_by_type_figure(df: pd.DataFrame) -> go.Figure:
    """Horizontal bars of events per type with their share of all events."""
    return go.Figure({"data": [{"type": "bar", "orientation": "h", "y": plotly_texts(df["event_type"]),
                                "x": df["events"].tolist(), "marker": {"color": TYPE_COLORS[:len(df)]},
                                "text": [f"{n:,} · {s:.1%}" for n, s in zip(df["events"], df["share"])],
                                "textposition": "auto",
                                "hovertemplate": "%{y}: %{x:,} events<extra></extra>"}],
                      "layout": _layout("Events by type", yaxis={"autorange": "reversed"},
                                        xaxis={"title": {"text": "events"}})})


def quality_figure(rows: pd.DataFrame) -> go.Figure:
    """A waterfall from rows read through every drop reason to rows kept."""
    steps = rows["step"].tolist()
    measure = ["absolute"] + ["relative"] * (len(steps) - 2) + ["total"]
    values = [rows["rows"].iat[0]] + [-int(v) for v in rows["rows"].iloc[1:-1]] + [0]
    return go.Figure({"data": [{"type": "waterfall", "orientation": "v", "x": plotly_texts(steps), "y": values,
                                "measure": measure, "text": [f"{int(v):,}" for v in rows["rows"]],
                                "textposition": "outside", "connector": {"line": {"color": "#9aa5b1"}},
                                "increasing": {"marker": {"color": READ}},
                                "decreasing": {"marker": {"color": DROPPED}},
                                "totals": {"marker": {"color": KEPT}},
                                "hovertemplate": "%{x}: %{text} rows<extra></extra>"}],
                      "layout": _layout("Rows read → dropped by reason → kept", yaxis={"title": {"text": "rows"}},
                                        showlegend=False)})


def fills_figure(fills: pd.DataFrame) -> go.Figure:
    """Bars of missing brands and category codes filled, by how."""
    return go.Figure({"data": [{"type": "bar", "orientation": "h", "y": plotly_texts(fills["fill"]),
                                "x": fills["rows"].tolist(), "marker": {"color": FILLED},
                                "text": [f"{int(v):,}" for v in fills["rows"]], "textposition": "auto",
                                "hovertemplate": "%{y}: %{x:,} rows<extra></extra>"}],
                      "layout": _layout("Missing values filled", yaxis={"autorange": "reversed"},
                                        xaxis={"title": {"text": "rows"}})})


def daily_figure(daily: pd.DataFrame) -> go.Figure:
    """Events (left axis) and purchases (right axis) per UTC day."""
    days = pd.to_datetime(daily["day"]).dt.strftime("%Y-%m-%d").tolist()
    traces = [{"type": "scatter", "mode": "lines", "x": days, "y": daily["events"].tolist(), "name": "events",
               "line": {"color": C["view"]}, "hovertemplate": "%{x}: %{y:,} events<extra></extra>"},
              {"type": "scatter", "mode": "lines", "x": days, "y": daily["purchases"].tolist(), "name": "purchases",
               "yaxis": "y2", "line": {"color": C["purchase"]},
               "hovertemplate": "%{x}: %{y:,} purchases<extra></extra>"}]
    return go.Figure({"data": traces, "layout": _layout(
        f"Events and purchases per day ({UTC})", height=280,
        xaxis={"title": {"text": f"day ({UTC})"}, "type": "date"}, yaxis={"title": {"text": "events"}},
        yaxis2={"title": {"text": "purchases"}, "overlaying": "y", "side": "right", "showgrid": False,
                "rangemode": "tozero"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})})


def source_label(q: dict[str, Any]) -> str:
    """Plain text: where the data comes from (the demo store or the input file names)."""
    if q.get("source") == "demo":
        return "the built-in demo store (synthetic, deterministic)"
    return ", ".join(str(f) for f in q.get("files") or []) or "unknown files"

