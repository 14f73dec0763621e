"""Users & sessions: session length and duration, purchases per user, repeat buyers, new vs returning, top users."""
import streamlit as st

from recsys.aggregates import charts, users as eda_users
from ui import eda as ui
from ui.common import md
from ui.router import require_router

require_router()  # before anything draws: a page running alone goes through app.py

st.title("👥 Users & sessions")
eda = ui.sidebar_filters()
st.caption(f"{md(eda.filters.describe())} · with a category or brand filter a session or user counts only its events "
           "there · a session's day is the UTC day it starts")
s = eda.q(eda_users.session_stats)
if not s["sessions"]:
    ui.nothing_matches(eda, "sessions")
r = eda.q(eda_users.repeat_buyers)

c = st.columns(6)
c[0].metric("Sessions", ui.compact(s["sessions"]), help=f"{s['sessions']:,} sessions")
c[1].metric("Events / session", f"{s['events_per_session']:.2f}")
c[2].metric("Mean duration", f"{s['mean_duration_s'] / 60:.1f} min")
c[3].metric("1-event sessions", f"{s['single_event_share']:.1%}")
c[4].metric("Buyers", ui.compact(r["buyers"]), help=f"{r['buyers']:,} users who bought")
c[5].metric("Repeat buyers", f"{r['repeat_share']:.1%}", f"{r['repeat_revenue_share']:.1%} of revenue",
            delta_color="off", help="Bought in at least two different sessions within the date range")

left, right = st.columns(2)
with left:
    eda.chart(charts.histogram, eda_users.events_per_session, "Events per session", "events in the session",
              key="events-per-session")
with right:
    eda.chart(charts.histogram, eda_users.session_durations, "Session duration (first to last event)", "duration",
              key="durations")

left, right = st.columns(2)
with left:
    eda.chart(charts.purchases_per_user, eda_users.purchases_per_user, key="purchases-per-user")
with right:
    eda.chart(charts.new_vs_returning, eda_users.new_vs_returning, key="new-returning")

st.subheader("Top buyers")
by = st.segmented_control("Rank by", ["revenue", "purchases"], default="revenue", key="top_users_by")
top = eda.q(eda_users.top_users, by=by or "revenue", n=25)
if top.empty:
    st.info("No purchases match these filters.")
else:
    st.caption("Purchases, sessions and revenue within the date range; the *_all_days columns cover every day.")
    ui.table(top, "top_buyers", "t-top-users", {"user_id": st.column_config.NumberColumn("user", format="%d"),
             "revenue": ui.money("revenue"), "first_purchase": st.column_config.DateColumn("first purchase"),
             "last_purchase": st.column_config.DateColumn("last purchase")})
