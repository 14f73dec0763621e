"""Customers: RFM segments of buyers, their value and categories, and how concentrated revenue is."""
import plotly.graph_objects as go
import streamlit as st

from ui import eda as ui
from ui.common import md
from ui.router import require_router
from recsys.aggregates import customers as C

require_router()  # before anything draws: a page running alone goes through app.py

st.title("💎 Customers")
eda = ui.sidebar_filters()
span = eda.q(C.data_span)
st.caption(f"{md(eda.filters.describe())} · buyers' orders (sessions with a purchase) and revenue within the date "
           f"range and the category / brand filter · recency in days up to {span['reference']}, the last day of the "
           "data in range")
horizon = st.segmented_control("Expected value over the next", list(C.HORIZONS), default=90, key="cust_horizon",
                               format_func=lambda d: f"{d} days") or 90
summary = eda.derive(C.summarize, C.rfm, span["days"], horizon)  # from one row per buyer, scored once per filter
buyers = int(summary["buyers"].sum())
if not buyers:
    st.info(f"No purchases match these filters ({md(eda.filters.describe())}): RFM segments need buyers. "
            "Widen the date range or choose another category or brand (or load a store with purchases).")
    st.stop()

t = st.columns(4)
t[0].metric("Buyers", ui.compact(buyers), help=f"{buyers:,}")
t[1].metric("Revenue", ui.compact(summary["revenue"].sum(), money=True))
t[2].metric("Repeat buyers", f"{summary['repeat_buyers'].sum() / buyers:.1%}", help="two orders or more")
t[3].metric("Days covered", f"{span['days']:,}", help=f"{span['first']} → {span['reference']}")

st.subheader("Segments")
st.caption("Scores 1-5: 1 + ⌊5 × share of buyers with a worse value⌋ (worse = longer since the last order, fewer "
           "orders, less revenue); ties share a score, so if most buyers ordered once they all have F = 1. Each "
           "buyer takes the first segment whose R and F ranges hold their scores.")
left, right = st.columns([3, 2])
with left:
    ui.table(summary.drop(columns=[c for c in summary.columns if c.startswith("expected")] + ["value_note"]),
             "rfm_segments", "t-segments", {"buyer_share": ui.pct("% of buyers"), "revenue": ui.money("revenue"),
                                            "revenue_share": ui.pct("% of revenue"),
                                            "mean_revenue": ui.money("revenue / buyer"),
                                            "avg_order_value": ui.money("avg order value")})
with right:
    fig = go.Figure({"data": [
        {"type": "bar", "y": summary["segment"].tolist(), "x": summary[col].tolist(), "name": name,
         "orientation": "h", "hovertemplate": f"%{{y}}: %{{x:.1%}} of {name}<extra></extra>"}
        for col, name in (("buyer_share", "buyers"), ("revenue_share", "revenue"))],
        "layout": {"title": {"text": "Share of buyers and of revenue per segment"}, "barmode": "group",
                   "xaxis": {"tickformat": ".0%"}, "yaxis": {"autorange": "reversed"}}})
    st.plotly_chart(ui.style(fig, 420), width="stretch", key="cust-shares", config={"displaylogo": False})

st.subheader(f"Expected value over the next {horizon} days")
st.caption(C.VALUE_MODEL + f" Shown only when the data spans at least 2 × {horizon} days and a segment has "
           f"{C.MIN_REPEAT_BUYERS}+ repeat buyers; otherwise the note says why.")
if summary[f"expected_value_{horizon}d"].isna().all():
    st.info(f"The data cannot support a {horizon}-day value: {summary['value_note'].iloc[0] or 'see the notes'}"
            f"{'' if horizon == min(C.HORIZONS) else '; try a shorter horizon'}.")
ui.table(summary[["segment", "buyers", "repeat_buyers", "avg_order_value", f"expected_orders_{horizon}d",
                  f"expected_value_{horizon}d", "value_note"]], f"expected_value_{horizon}d", "t-clv",
         {"avg_order_value": ui.money("avg order value"),
          f"expected_value_{horizon}d": ui.money(f"expected value / buyer, {horizon} d")})

st.subheader("Recency × frequency")
by = st.segmented_control("Colour by", ["buyers", "revenue"], default="buyers", key="cust_rf_by") or "buyers"
grid = eda.derive(C.grid, C.rfm)
st.plotly_chart(ui.style(C.rf_figure(grid, by), 460), width="stretch", key="cust-rf", config={"displaylogo": False})
ui.table(grid, "rfm_grid", "t-rf", {"revenue": ui.money("revenue")}, height=200)

segment = st.selectbox("Segment", list(C.SEGMENT_NAMES), key="cust_segment")
top = eda.q(C.segment_top, segment=segment)
dim = "brand" if eda.filters.category else "category_top"
st.subheader(f"Top {'brands' if eda.filters.category else 'categories'} of {segment}")
if top.empty:
    st.info(f"No buyers in {segment} with these filters.")
else:
    st.plotly_chart(ui.style(C.top_figure(top, dim, segment), 380), width="stretch", key="cust-top",
                    config={"displaylogo": False})
    ui.table(top, f"top_{dim}_{segment.replace(' ', '_').replace(chr(39), '')}", "t-seg-top",
             {"revenue": ui.money("revenue"), "share_of_segment_revenue": ui.pct("% of the segment's revenue")})

st.subheader("Revenue concentration (Pareto)")
by = st.segmented_control("By", list(C.PARETO_BY), default="customer", key="cust_pareto_by") or "customer"
p = eda.q(C.pareto, by=by)
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(ui.style(C.pareto_figure(p["curve"], by), 400), width="stretch", key="cust-pareto",
                    config={"displaylogo": False})
with right:
    st.caption(f"Over {p['n']:,} {by}s with a purchase; the top p % are the ⌈p × n⌉ with the most revenue.")
    ui.table(p["shares"], f"pareto_{by}", "t-pareto", {"revenue": ui.money("revenue"),
                                                       "revenue_share": ui.pct("% of revenue")})
