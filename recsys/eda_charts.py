"""Plotly figures of the EDA pages, built from the aggregate frames (titles, axis units, hover details).

Pure functions DataFrame -> Figure, so pages stay a few lines and figures can be tested without a browser.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

C = {"view": "#4C78A8", "cart": "#F58518", "purchase": "#54A24B", "remove": "#E45756", "revenue": "#B279A2",
     "new": "#72B7B2", "returning": "#F58518"}
UTC = "UTC"


def funnel(steps: pd.DataFrame) -> go.Figure:
    """Event funnel view -> cart -> purchase with counts, % of views and % of the previous step."""
    fig = go.Figure(go.Funnel(
        y=steps["step"], x=steps["events"], marker_color=[C["view"], C["cart"], C["purchase"]],
        textinfo="value+percent initial+percent previous",
        hovertemplate="%{y}: %{x:,} events<br>%{percentInitial:.2%} of views<br>"
                      "%{percentPrevious:.2%} of previous step<extra></extra>"))
    return fig.update_layout(title="Event funnel: view → cart → purchase (events)")


def rates_by(df: pd.DataFrame, key: str, title: str, label: str) -> go.Figure:
    """Grouped bars of the three event-level conversion rates per value of ``key`` (a month, a brand...)."""
    fig = go.Figure()
    for col, name, color in (("cart_rate", "cart / view", C["cart"]),
                             ("purchase_rate", "purchase / cart", C["purchase"]),
                             ("view_to_purchase", "purchase / view", C["revenue"])):
        fig.add_bar(x=df[key].astype(str), y=df[col], name=name, marker_color=color,
                    customdata=df[["views", "carts", "purchases"]],
                    hovertemplate=f"%{{x}}<br>{name}: %{{y:.2%}}<br>views %{{customdata[0]:,}} · carts "
                                  f"%{{customdata[1]:,}} · purchases %{{customdata[2]:,}}<extra></extra>")
    fig.update_layout(title=title, barmode="group", xaxis_title=label, yaxis_title="conversion rate (%)")
    return fig.update_yaxes(tickformat=".1%")


def session_funnel(df: pd.DataFrame) -> go.Figure:
    """Share of sessions reaching each step (the removal step only when the data records removals)."""
    df = df[(df["step"] != "removed from cart") | (df["sessions"] > 0)]
    fig = go.Figure(go.Bar(
        x=df["step"], y=df["share_of_sessions"], marker_color=[C["view"], C["view"], C["cart"], C["purchase"],
                                                               C["remove"]][:len(df)],
        customdata=df["sessions"], text=[f"{v:.1%}" for v in df["share_of_sessions"]],
        hovertemplate="%{x}: %{customdata:,} sessions (%{y:.2%} of sessions)<extra></extra>"))
    fig.update_layout(title="Session funnel: share of sessions that reach each step", xaxis_title="step",
                      yaxis_title="share of sessions (%)")
    return fig.update_yaxes(tickformat=".0%")


def by_hour(df: pd.DataFrame) -> go.Figure:
    """Events (bars) and purchases (line, right axis) per hour of day, UTC."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["hour_utc"], y=df["events"], name="events", marker_color=C["view"],
                hovertemplate="%{x}:00 UTC: %{y:,} events<extra></extra>")
    fig.add_scatter(x=df["hour_utc"], y=df["purchases"], name="purchases", mode="lines+markers",
                    line_color=C["purchase"], secondary_y=True,
                    hovertemplate="%{x}:00 UTC: %{y:,} purchases<extra></extra>")
    fig.update_layout(title=f"Events and purchases by hour of day ({UTC})")
    fig.update_xaxes(title=f"hour of day ({UTC})", dtick=2)
    fig.update_yaxes(title="events", secondary_y=False)
    return fig.update_yaxes(title="purchases", rangemode="tozero", secondary_y=True)


def by_weekday(df: pd.DataFrame) -> go.Figure:
    """Average events and purchases per calendar day of each weekday (UTC)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["weekday"], y=df["events_per_day"], name="events per day", marker_color=C["view"],
                customdata=df[["days", "events"]],
                hovertemplate="%{x}: %{y:,.0f} events per day (%{customdata[1]:,} over %{customdata[0]} days)"
                              "<extra></extra>")
    fig.add_scatter(x=df["weekday"], y=df["purchases_per_day"], name="purchases per day", mode="lines+markers",
                    line_color=C["purchase"], secondary_y=True,
                    hovertemplate="%{x}: %{y:,.1f} purchases per day<extra></extra>")
    fig.update_layout(title=f"Average day by weekday ({UTC} days)", xaxis_title=f"day of week ({UTC})")
    fig.update_yaxes(title="events per day", secondary_y=False)
    return fig.update_yaxes(title="purchases per day", rangemode="tozero", secondary_y=True)


def heatmap(m: pd.DataFrame, measure: str) -> go.Figure:
    """Hour x weekday heatmap of a measure (UTC)."""
    unit = "$" if measure == "revenue" else ""
    fig = go.Figure(go.Heatmap(z=m.to_numpy(), x=list(m.columns), y=list(m.index), colorscale="Blues",
                               colorbar_title=measure,
                               hovertemplate=f"%{{y}} %{{x}}:00 {UTC}: {unit}%{{z:,.0f}} {measure}<extra></extra>"))
    fig.update_layout(title=f"{measure.capitalize()} by weekday and hour of day ({UTC})",
                      xaxis_title=f"hour of day ({UTC})", yaxis_title="day of week")
    return fig.update_yaxes(autorange="reversed").update_xaxes(dtick=2)


def daily_trend(df: pd.DataFrame) -> go.Figure:
    """Daily events, purchases, revenue and conversion in four stacked panels (UTC days)."""
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=("events per day", "purchases per day", "revenue per day ($)",
                                        "conversion (purchases / views)"))
    for i, (col, color, fmt) in enumerate((("events", C["view"], ",.0f"), ("purchases", C["purchase"], ",.0f"),
                                           ("revenue", C["revenue"], "$,.0f"), ("conversion", C["cart"], ".2%")),
                                          start=1):
        fig.add_scatter(x=df["day"], y=df[col], name=col, mode="lines+markers", line_color=color, row=i, col=1,
                        hovertemplate=f"%{{x|%a %Y-%m-%d}}: %{{y:{fmt}}} {col}<extra></extra>")
    fig.update_yaxes(tickformat=".1%", row=4, col=1)
    fig.update_xaxes(title=f"day ({UTC})", row=4, col=1)
    return fig.update_layout(title=f"Daily trend ({UTC} days)", showlegend=False)


def month_bars(df: pd.DataFrame) -> go.Figure:
    """Per month: events and revenue per active day (so a partial month compares fairly)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["month"], y=df["events_per_day"], name="events per day", marker_color=C["view"],
                offsetgroup=0, hovertemplate="%{x}: %{y:,.0f} events per day<extra></extra>")
    fig.add_bar(x=df["month"], y=df["revenue_per_day"], name="revenue per day ($)", marker_color=C["revenue"],
                offsetgroup=1, secondary_y=True, hovertemplate="%{x}: $%{y:,.0f} per day<extra></extra>")
    fig.update_layout(title=f"Month comparison per active day ({UTC})", xaxis_title="month", barmode="group")
    fig.update_yaxes(title="events per day", rangemode="tozero", secondary_y=False)
    return fig.update_yaxes(title="revenue per day ($)", rangemode="tozero", secondary_y=True)


def top_bars(df: pd.DataFrame, dim: str, by: str, label: str) -> go.Figure:
    """Horizontal bars of the top values of ``dim`` by ``by`` with every measure on hover."""
    fmt = {"revenue": "$,.0f", "view_to_purchase": ".2%"}.get(by, ",.0f")
    axis = {"revenue": "revenue ($)", "view_to_purchase": "conversion: purchases / views (%)"}.get(by, by)
    d = df.iloc[::-1]
    fig = go.Figure(go.Bar(
        y=d[dim].astype(str), x=d[by], orientation="h", marker_color=C["revenue" if by == "revenue" else "view"],
        customdata=d[["views", "carts", "purchases", "revenue", "view_to_purchase"]],
        hovertemplate="%{y}<br>views %{customdata[0]:,} · carts %{customdata[1]:,} · purchases %{customdata[2]:,}"
                      "<br>revenue $%{customdata[3]:,.0f} · conversion %{customdata[4]:.2%}<extra></extra>"))
    fig.update_layout(title=f"Top {len(df)} {label} by {axis.split(' (')[0]}", xaxis_title=axis, yaxis_title=label)
    return fig.update_xaxes(tickformat=fmt.replace("$", ""))


def treemap(tree: pd.DataFrame, size: str = "views") -> go.Figure:
    """The category_code hierarchy sized by ``size`` and coloured by conversion (click to drill down)."""
    tree = tree[tree[size] > 0]
    fig = go.Figure(go.Treemap(
        ids=tree["id"], parents=tree["parent"], labels=tree["label"], values=tree[size], branchvalues="total",
        marker=dict(colors=tree["view_to_purchase"], colorscale="Greens", colorbar=dict(title="purchases / views",
                                                                                       tickformat=".1%")),
        customdata=tree[["views", "purchases", "revenue", "view_to_purchase"]],
        hovertemplate="<b>%{id}</b><br>views %{customdata[0]:,} · purchases %{customdata[1]:,}<br>revenue "
                      "$%{customdata[2]:,.0f} · conversion %{customdata[3]:.2%}<extra></extra>"))
    return fig.update_layout(title=f"Category tree (size: {size}, colour: purchases / views) — click to drill down")


def price_boxes(df: pd.DataFrame, dim: str = "category_code") -> go.Figure:
    """Viewed-price distribution per category: box = quartiles, whiskers = 5th-95th percentile, log scale."""
    d = df.iloc[::-1]
    fig = go.Figure(go.Box(
        y=d[dim], q1=d["q1"], median=d["median"], q3=d["q3"], lowerfence=d["p5"], upperfence=d["p95"],
        orientation="h", marker_color=C["view"], name="viewed prices",
        hovertemplate="%{y}<br>median $%{median:,.2f}<extra></extra>"))
    fig.update_layout(title="Price of viewed items per category (box: quartiles, whiskers: 5th-95th pct)",
                      xaxis_title="price ($, log scale)", yaxis_title="category", showlegend=False)
    return fig.update_xaxes(type="log")


def price_bands(df: pd.DataFrame) -> go.Figure:
    """Conversion (bars) and views (line, right axis) per price band."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["band"], y=df["view_to_purchase"], name="purchases / views", marker_color=C["purchase"],
                customdata=df[["views", "purchases", "revenue"]],
                hovertemplate="%{x}: %{y:.2%} of views bought<br>views %{customdata[0]:,} · purchases "
                              "%{customdata[1]:,} · revenue $%{customdata[2]:,.0f}<extra></extra>")
    fig.add_scatter(x=df["band"], y=df["views"], name="views", mode="lines+markers", line_color=C["view"],
                    secondary_y=True, hovertemplate="%{x}: %{y:,} views<extra></extra>")
    fig.update_layout(title="Conversion by price band", xaxis_title="price band (item price, $)")
    fig.update_yaxes(title="purchases / views (%)", tickformat=".1%", secondary_y=False)
    return fig.update_yaxes(title="views", rangemode="tozero", secondary_y=True)


def histogram(df: pd.DataFrame, title: str, xlabel: str) -> go.Figure:
    """Sessions per bucket (bars) and the share of those sessions that bought (line, right axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=df["bucket"], y=df["sessions"], name="sessions", marker_color=C["view"],
                customdata=df["share"], hovertemplate="%{x}: %{y:,} sessions (%{customdata:.1%})<extra></extra>")
    fig.add_scatter(x=df["bucket"], y=df["purchase_share"], name="share that bought", mode="lines+markers",
                    line_color=C["purchase"], secondary_y=True,
                    hovertemplate="%{x}: %{y:.2%} of these sessions bought<extra></extra>")
    fig.update_layout(title=title, xaxis_title=xlabel)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="sessions", secondary_y=False)
    return fig.update_yaxes(title="share that bought (%)", tickformat=".0%", rangemode="tozero", secondary_y=True)


def purchases_per_user(df: pd.DataFrame) -> go.Figure:
    """Buyers by number of purchases in range."""
    fig = go.Figure(go.Bar(x=df["purchases"], y=df["buyers"], marker_color=C["purchase"],
                           customdata=df[["share", "revenue"]],
                           hovertemplate="%{x} purchases: %{y:,} buyers (%{customdata[0]:.1%}), revenue "
                                         "$%{customdata[1]:,.0f}<extra></extra>"))
    fig.update_layout(title="Buyers by number of purchases", xaxis_title="purchases per buyer", yaxis_title="buyers")
    return fig.update_xaxes(type="category")


def new_vs_returning(df: pd.DataFrame) -> go.Figure:
    """Stacked daily active users split into new and returning (UTC days)."""
    fig = go.Figure()
    fig.add_bar(x=df["day"], y=df["new_users"], name="new", marker_color=C["new"],
                hovertemplate="%{x|%a %Y-%m-%d}: %{y:,} new users<extra></extra>")
    fig.add_bar(x=df["day"], y=df["returning_users"], name="returning", marker_color=C["returning"],
                hovertemplate="%{x|%a %Y-%m-%d}: %{y:,} returning users<extra></extra>")
    return fig.update_layout(title=f"New vs returning users per day ({UTC})", barmode="stack",
                             xaxis_title=f"day ({UTC})", yaxis_title="active users")
