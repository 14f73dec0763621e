"""Temporal: hour of day, day of week, hour x weekday heatmap, daily trend and month comparison (UTC)."""
import streamlit as st

from recsys.aggregates import charts, temporal as eda_temporal
from ui import eda as ui
from ui.common import md
from ui.router import require_router

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🕒 Temporal patterns")
eda = ui.sidebar_filters()
st.caption(f"{md(eda.filters.describe())} · every hour and day is UTC (the REES46 timestamps are UTC)")
daily = eda.q(eda_temporal.daily_trend)
if daily.empty:
    ui.nothing_matches(eda)

left, right = st.columns(2)
with left:
    eda.chart(charts.by_hour, eda_temporal.by_hour, key="by-hour")
with right:
    eda.chart(charts.by_weekday, eda_temporal.by_weekday, key="by-weekday")

measure = st.segmented_control("Heatmap measure", ["events", "views", "carts", "purchases", "revenue"],
                               default="events", key="heat_measure") or "events"
eda.chart(charts.heatmap, eda_temporal.hour_weekday, measure, measure=measure, key="heatmap", height=360)

eda.chart(charts.daily_trend, eda_temporal.daily_trend, key="daily", height=720)
ui.table(daily, "daily_trend", "t-daily", {"day": st.column_config.DateColumn("day (UTC)"),
         "revenue": ui.money("revenue"), "conversion": ui.pct("purchases / views")}, height=250)

st.subheader("Month comparison")
months = eda.q(eda_temporal.month_comparison)
eda.chart(charts.month_bars, eda_temporal.month_comparison, key="months")
ui.table(months, "month_comparison", "t-months", {"revenue": ui.money("revenue"),
         "revenue_per_day": ui.money("revenue per day"), "conversion": ui.pct("purchases / views")})
