"""Overview: headline KPIs, where the data comes from, events by type, a daily trend and what cleaning did, as
pictures (the tables stay one click away), each with a link to the page that explains it."""
import streamlit as st

from recsys.aggregates import temporal as eda_temporal
from ui import eda as ui
from ui.common import PLOTLY_CONFIG, md, quality_report, root, show_quality, store_kpis, version
from ui.router import require_router
from recsys.aggregates import overview as oc

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🏠 Store overview")
ver = version("events")
k = store_kpis(str(root()), ver)
q = quality_report(str(root()), ver)

span = f"{k['first_event']:%Y-%m-%d %H:%M} → {k['last_event']:%Y-%m-%d %H:%M} UTC"
st.caption(f"Data: {md(oc.source_label(q))} · {span} · artifacts in {md(root())}")
st.page_link("pages/data.py", label="Switch the store or build your own data on the Data page", icon="🗂️")

c = st.columns(4)
c[0].metric("Events", f"{k['events']:,}")
c[1].metric("Users", f"{k['users']:,}")
c[2].metric("Products", f"{k['products']:,}")
c[3].metric("Sessions", f"{k['sessions']:,}")
c = st.columns(4)
c[0].metric("Purchases", f"{k['purchases']:,}")
c[1].metric("Revenue", f"${k['revenue']:,.0f}")
c[2].metric("Buyers", f"{k['buyers']:,}")
c[3].metric("Days covered", f"{(k['last_event'] - k['first_event']).total_seconds() / 86400:,.1f}", help=span)

left, right = st.columns(2)
with left:
    types = oc.events_by_type(k)
    st.plotly_chart(oc.events_by_type_figure(types), width="stretch", key="types-chart", config=PLOTLY_CONFIG)
    st.page_link("pages/funnel.py", label="How views turn into carts and purchases: Funnel", icon="🔻")
    with st.expander("Events by type (table)"):
        st.dataframe(types, hide_index=True, width="stretch", key="types-table",
                     column_config={"share": st.column_config.NumberColumn("share", format="percent")})
with right:
    agg_ver = ui.ensure_aggregates()
    daily = ui.load(eda_temporal.daily_trend, str(root()), agg_ver, (None, None, None, None))
    if daily.empty:
        st.info("No events per day to draw yet.")
    else:
        st.plotly_chart(oc.daily_figure(daily), width="stretch", key="daily-chart", config=PLOTLY_CONFIG)
    st.page_link("pages/temporal.py", label="Hours, weekdays and months: Temporal", icon="🕒")
    st.page_link("pages/users_sessions.py", label="Sessions, buyers and repeat buyers: Users & sessions", icon="👥")

st.subheader("Data quality")
st.caption("Every cleaning rule of the ingest, counted: rows read = rows kept + every drop reason.")
show_quality(q, "quality")
st.page_link("pages/data.py", label="Which files this set was built from, and building another: Data", icon="🗂️")
