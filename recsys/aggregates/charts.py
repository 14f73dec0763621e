"""Plotly figures of the EDA pages, built from the aggregate frames (titles, axis units, hover details).

Pure functions DataFrame -> Figure, so pages stay a few lines and figures can be tested without a browser.
Each figure is built in one pass from plain dicts (traces and a layout with an overlaid right axis where
needed): Plotly validates once, which is several times cheaper than make_subplots + repeated update_* calls.

Brands, categories and product names are store data, and Plotly reads a subset of HTML (``<b>``, ``<br>``,
``<a href>``, ``<span style>``...) in tick labels, legends, hover text, titles and annotations: every store string
reaches a figure through :func:`plotly_text`, here and in the app's other figures.
"""
from __future__ import annotations

import html
from typing import Any, Iterable

import pandas as pd
import plotly.graph_objects as go

C = {"view": "#4C78A8", "cart": "#F58518", "purchase": "#54A24B", "remove": "#E45756", "revenue": "#B279A2",
     "new": "#72B7B2", "returning": "#F58518"}
UTC = "UTC"


def plotly_text(value: Any) -> Any:
    """Store text that Plotly draws literally: ``&``, ``<`` and ``>`` become entities, which Plotly's pseudo-HTML
    decodes back to the characters after it has looked for tags; numbers, dates and None pass unchanged."""
    return html.escape(value, quote=False) if isinstance(value, str) else value


def plotly_texts(values: Iterable[Any]) -> list[Any]:
    """:func:`plotly_text` of every value (category values, tick labels, hover columns)."""
    return [plotly_text(v) for v in values]


def plotly_columns(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A copy of ``df`` whose text ``columns`` are :func:`plotly_text` (for ``plotly.express`` figures)."""
    return df.assign(**{c: df[c].map(plotly_text) for c in columns if c in df})


def _fig(traces: list[dict], title: str, x: dict | None = None, y: dict | None = None, y2: dict | None = None,
         **layout: Any) -> go.Figure:
    """One figure from trace dicts; ``y2`` adds a right-hand axis overlaying the left one."""
    lay: dict[str, Any] = {"title": {"text": title}, "xaxis": x or {}, "yaxis": y or {}, **layout}
    if y2 is not None:
        lay["yaxis2"] = {"overlaying": "y", "side": "right", "showgrid": False, "rangemode": "tozero", **y2}
    return go.Figure({"data": traces, "layout": lay})


def _axis(title: str, **kw: Any) -> dict:
    return {"title": {"text": title}, **kw}


def funnel(steps: pd.DataFrame) -> go.Figure:
    """Event funnel view -> cart -> purchase with counts, % of views and % of the previous step."""
    return _fig([{"type": "funnel", "y": steps["step"].tolist(), "x": steps["events"].tolist(),
                  "marker": {"color": [C["view"], C["cart"], C["purchase"]]},
                  "texttemplate": "%{value:,}<br>%{percentInitial:.2%} of views<br>"
                                  "%{percentPrevious:.1%} of previous",
                  "hovertemplate": "%{y}: %{x:,} events<br>%{percentInitial:.2%} of views<br>"
                                   "%{percentPrevious:.2%} of previous step<extra></extra>"}],
                "Event funnel: view → cart → purchase (events)")


def rates_by(df: pd.DataFrame, key: str, title: str, label: str) -> go.Figure:
    """Per value of ``key`` (a month, a brand...): cart / view and purchase / view as bars (left axis) and
    purchase / cart as markers on the right axis (it is ~30x larger, so it would flatten the others)."""
    custom = df[["views", "carts", "purchases"]].to_numpy().tolist()
    x = plotly_texts(df[key].astype(str))
    hover = ("%{{x}}<br>{name}: %{{y:.2%}}<br>views %{{customdata[0]:,}} · carts %{{customdata[1]:,}} · "
             "purchases %{{customdata[2]:,}}<extra></extra>")
    traces = [{"type": "bar", "x": x, "y": df[col].tolist(), "name": name, "marker": {"color": color},
               "customdata": custom, "hovertemplate": hover.format(name=name)}
              for col, name, color in (("cart_rate", "cart / view", C["cart"]),
                                       ("view_to_purchase", "purchase / view", C["revenue"]))]
    traces.append({"type": "scatter", "mode": "markers", "x": x, "y": df["purchase_rate"].tolist(),
                   "name": "purchase / cart (right axis)", "yaxis": "y2",
                   "marker": {"color": C["purchase"], "size": 11, "symbol": "diamond"}, "customdata": custom,
                   "hovertemplate": hover.format(name="purchase / cart")})
    return _fig(traces, title, _axis(label, type="category"), _axis("per view (%)", tickformat=".1%"),
                _axis("purchase / cart (%)", tickformat=".0%"), barmode="group")


def session_funnel(df: pd.DataFrame) -> go.Figure:
    """Share of sessions reaching each step (the removal step only when the data records removals)."""
    df = df[(df["step"] != "removed from cart") | (df["sessions"] > 0)]
    colors = [C["view"], C["view"], C["cart"], C["purchase"], C["remove"]][:len(df)]
    return _fig([{"type": "bar", "x": df["step"].tolist(), "y": df["share_of_sessions"].tolist(),
                  "marker": {"color": colors}, "customdata": df["sessions"].tolist(),
                  "text": [f"{v:.1%}" for v in df["share_of_sessions"]],
                  "hovertemplate": "%{x}: %{customdata:,} sessions (%{y:.2%} of sessions)<extra></extra>"}],
                "Session funnel: share of sessions that reach each step", _axis("step"),
                _axis("share of sessions (%)", tickformat=".0%"))


def _bars_and_line(x: list, bars: dict, line: dict, title: str, xaxis: dict, ybar: dict, yline: dict) -> go.Figure:
    """Bars on the left axis and a line on the right one."""
    return _fig([{"type": "bar", "x": x, **bars}, {"type": "scatter", "mode": "lines+markers", "x": x,
                                                    "yaxis": "y2", **line}],
                title, xaxis, ybar, yline)


def by_hour(df: pd.DataFrame) -> go.Figure:
    """Events (bars) and purchases (line, right axis) per hour of day, UTC."""
    return _bars_and_line(
        df["hour_utc"].tolist(),
        {"y": df["events"].tolist(), "name": "events", "marker": {"color": C["view"]},
         "hovertemplate": "%{x}:00 UTC: %{y:,} events<extra></extra>"},
        {"y": df["purchases"].tolist(), "name": "purchases", "line": {"color": C["purchase"]},
         "hovertemplate": "%{x}:00 UTC: %{y:,} purchases<extra></extra>"},
        f"Events and purchases by hour of day ({UTC})", _axis(f"hour of day ({UTC})", dtick=2),
        _axis("events"), _axis("purchases"))


def by_weekday(df: pd.DataFrame) -> go.Figure:
    """Average events and purchases per calendar day of each weekday (UTC)."""
    return _bars_and_line(
        df["weekday"].tolist(),
        {"y": df["events_per_day"].tolist(), "name": "events per day", "marker": {"color": C["view"]},
         "customdata": df[["days", "events"]].to_numpy().tolist(),
         "hovertemplate": "%{x}: %{y:,.0f} events per day (%{customdata[1]:,} over %{customdata[0]} days)"
                          "<extra></extra>"},
        {"y": df["purchases_per_day"].tolist(), "name": "purchases per day", "line": {"color": C["purchase"]},
         "hovertemplate": "%{x}: %{y:,.1f} purchases per day<extra></extra>"},
        f"Average day by weekday ({UTC} days)", _axis(f"day of week ({UTC})"), _axis("events per day"),
        _axis("purchases per day"))


def heatmap(m: pd.DataFrame, measure: str) -> go.Figure:
    """Hour x weekday heatmap of a measure (UTC)."""
    unit = "$" if measure == "revenue" else ""
    return _fig([{"type": "heatmap", "z": m.to_numpy().tolist(), "x": list(m.columns), "y": list(m.index),
                  "colorscale": "Blues", "colorbar": {"title": {"text": measure}},
                  "hovertemplate": f"%{{y}} %{{x}}:00 {UTC}: {unit}%{{z:,.0f}} {measure}<extra></extra>"}],
                f"{measure.capitalize()} by weekday and hour of day ({UTC})", _axis(f"hour of day ({UTC})", dtick=2),
                _axis("day of week", autorange="reversed"))


def daily_trend(df: pd.DataFrame) -> go.Figure:
    """Daily events, purchases, revenue and conversion in four stacked panels sharing the day axis (UTC)."""
    panels = (("events", C["view"], ",.0f", "events per day"), ("purchases", C["purchase"], ",.0f",
                                                                  "purchases per day"),
              ("revenue", C["revenue"], "$,.0f", "revenue per day ($)"),
              ("conversion", C["cart"], ".2%", "conversion (purchases / views)"))
    days = df["day"].dt.strftime("%Y-%m-%d").tolist()
    traces, layout, notes = [], {}, []
    for i, (col, color, fmt, label) in enumerate(panels):
        axis = "y" if i == 0 else f"y{i + 1}"
        traces.append({"type": "scatter", "mode": "lines+markers", "x": days, "y": df[col].tolist(), "name": col,
                       "yaxis": axis, "line": {"color": color},
                       "hovertemplate": f"%{{x|%a %Y-%m-%d}}: %{{y:{fmt}}} {col}<extra></extra>"})
        top = 1 - i * 0.26
        layout["yaxis" if i == 0 else f"yaxis{i + 1}"] = {"domain": [top - 0.2, top], "anchor": "x",
                                                          **({"tickformat": ".1%"} if col == "conversion" else {})}
        notes.append({"text": label, "x": 0, "xref": "paper", "y": top, "yref": "paper", "yanchor": "bottom",
                      "showarrow": False, "font": {"size": 12}})
    y = layout.pop("yaxis")
    x = _axis(f"day ({UTC})", type="date", anchor=f"y{len(panels)}")  # the day axis under the bottom panel
    return _fig(traces, f"Daily trend ({UTC} days)", x, y, showlegend=False,
                annotations=notes, **layout)


def month_bars(df: pd.DataFrame) -> go.Figure:
    """Per month: events and revenue per active day (so a partial month compares fairly)."""
    x = df["month"].tolist()
    return _fig([{"type": "bar", "x": x, "y": df["events_per_day"].tolist(), "name": "events per day",
                  "marker": {"color": C["view"]}, "offsetgroup": "0",
                  "hovertemplate": "%{x}: %{y:,.0f} events per day<extra></extra>"},
                 {"type": "bar", "x": x, "y": df["revenue_per_day"].tolist(), "name": "revenue per day ($)",
                  "marker": {"color": C["revenue"]}, "offsetgroup": "1", "yaxis": "y2",
                  "hovertemplate": "%{x}: $%{y:,.0f} per day<extra></extra>"}],
                f"Month comparison per active day ({UTC})", _axis("month", type="category"),
                _axis("events per day", rangemode="tozero"), _axis("revenue per day ($)"), barmode="group")


def top_bars(df: pd.DataFrame, dim: str, by: str, label: str) -> go.Figure:
    """Horizontal bars of the top values of ``dim`` by ``by`` with every measure on hover."""
    fmt = {"revenue": ",.0f", "view_to_purchase": ".2%"}.get(by, ",.0f")
    axis = {"revenue": "revenue ($)", "view_to_purchase": "conversion: purchases / views (%)"}.get(by, by)
    d = df.iloc[::-1]
    return _fig([{"type": "bar", "orientation": "h", "y": plotly_texts(d[dim].astype(str)), "x": d[by].tolist(),
                  "marker": {"color": C["revenue" if by == "revenue" else "view"]},
                  "customdata": d[["views", "carts", "purchases", "revenue", "view_to_purchase"]].to_numpy().tolist(),
                  "hovertemplate": "%{y}<br>views %{customdata[0]:,} · carts %{customdata[1]:,} · purchases "
                                   "%{customdata[2]:,}<br>revenue $%{customdata[3]:,.0f} · conversion "
                                   "%{customdata[4]:.2%}<extra></extra>"}],
                f"Top {len(df)} {label} by {axis.split(' (')[0]}", _axis(axis, tickformat=fmt),
                _axis(label, type="category"))


def treemap(tree: pd.DataFrame, size: str = "views") -> go.Figure:
    """The category_code hierarchy sized by ``size`` and coloured by conversion (click to drill down)."""
    tree = tree[tree[size] > 0]
    return _fig([{"type": "treemap", "ids": plotly_texts(tree["id"]), "parents": plotly_texts(tree["parent"]),
                  "labels": plotly_texts(tree["label"]), "values": tree[size].tolist(), "branchvalues": "total",
                  "marker": {"colors": tree["view_to_purchase"].tolist(), "colorscale": "Greens",
                             "colorbar": {"title": {"text": "purchases / views"}, "tickformat": ".1%"}},
                  "customdata": tree[["views", "purchases", "revenue", "view_to_purchase"]].to_numpy().tolist(),
                  "hovertemplate": "<b>%{id}</b><br>views %{customdata[0]:,} · purchases %{customdata[1]:,}<br>"
                                   "revenue $%{customdata[2]:,.0f} · conversion %{customdata[3]:.2%}<extra></extra>"}],
                f"Category tree (size: {size}, colour: purchases / views) — click to drill down")


def price_boxes(df: pd.DataFrame, dim: str = "category_code") -> go.Figure:
    """Viewed-price distribution per category: box = quartiles, whiskers = 5th-95th percentile, log scale."""
    d = df.iloc[::-1]
    return _fig([{"type": "box", "orientation": "h", "y": plotly_texts(d[dim]), "q1": d["q1"].tolist(),
                  "median": d["median"].tolist(), "q3": d["q3"].tolist(), "lowerfence": d["p5"].tolist(),
                  "upperfence": d["p95"].tolist(), "marker": {"color": C["view"]}, "name": "viewed prices",
                  "hovertemplate": "%{y}<br>median $%{median:,.2f}<extra></extra>"}],
                "Price of viewed items per category (box: quartiles, whiskers: 5th-95th pct)",
                _axis("price ($, log scale)", type="log"), _axis("category", type="category"), showlegend=False)


def price_bands(df: pd.DataFrame) -> go.Figure:
    """Conversion (bars) and views (line, right axis) per price band."""
    return _bars_and_line(
        df["band"].tolist(),
        {"y": df["view_to_purchase"].tolist(), "name": "purchases / views", "marker": {"color": C["purchase"]},
         "customdata": df[["views", "purchases", "revenue"]].to_numpy().tolist(),
         "hovertemplate": "%{x}: %{y:.2%} of views bought<br>views %{customdata[0]:,} · purchases "
                          "%{customdata[1]:,} · revenue $%{customdata[2]:,.0f}<extra></extra>"},
        {"y": df["views"].tolist(), "name": "views", "line": {"color": C["view"]},
         "hovertemplate": "%{x}: %{y:,} views<extra></extra>"},
        "Conversion by price band", _axis("price band (item price, $)", type="category"),
        _axis("purchases / views (%)", tickformat=".1%"), _axis("views"))


def histogram(df: pd.DataFrame, title: str, xlabel: str) -> go.Figure:
    """Sessions per bucket (bars) and the share of those sessions that bought (line, right axis)."""
    return _bars_and_line(
        df["bucket"].tolist(),
        {"y": df["sessions"].tolist(), "name": "sessions", "marker": {"color": C["view"]},
         "customdata": df["share"].tolist(),
         "hovertemplate": "%{x}: %{y:,} sessions (%{customdata:.1%})<extra></extra>"},
        {"y": df["purchase_share"].tolist(), "name": "share that bought", "line": {"color": C["purchase"]},
         "hovertemplate": "%{x}: %{y:.2%} of these sessions bought<extra></extra>"},
        title, _axis(xlabel, type="category"), _axis("sessions"), _axis("share that bought (%)", tickformat=".0%"))


def purchases_per_user(df: pd.DataFrame) -> go.Figure:
    """Buyers by number of purchases in range."""
    return _fig([{"type": "bar", "x": df["purchases"].tolist(), "y": df["buyers"].tolist(),
                  "marker": {"color": C["purchase"]}, "customdata": df[["share", "revenue"]].to_numpy().tolist(),
                  "hovertemplate": "%{x} purchases: %{y:,} buyers (%{customdata[0]:.1%}), revenue "
                                   "$%{customdata[1]:,.0f}<extra></extra>"}],
                "Buyers by number of purchases", _axis("purchases per buyer", type="category"), _axis("buyers"))


def new_vs_returning(df: pd.DataFrame) -> go.Figure:
    """Stacked daily active users split into new and returning (UTC days)."""
    days = df["day"].dt.strftime("%Y-%m-%d").tolist()
    return _fig([{"type": "bar", "x": days, "y": df["new_users"].tolist(), "name": "new",
                  "marker": {"color": C["new"]}, "hovertemplate": "%{x|%a %Y-%m-%d}: %{y:,} new users<extra></extra>"},
                 {"type": "bar", "x": days, "y": df["returning_users"].tolist(), "name": "returning",
                  "marker": {"color": C["returning"]},
                  "hovertemplate": "%{x|%a %Y-%m-%d}: %{y:,} returning users<extra></extra>"}],
                f"New vs returning users per day ({UTC})", _axis(f"day ({UTC})", type="date"),
                _axis("active users"), barmode="stack")
