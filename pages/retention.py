"""Retention: cohorts by the week or month of a user's first event or purchase, and who comes back."""
import streamlit as st

from ui import eda as ui
from ui.common import md
from ui.router import require_router
from recsys.aggregates import retention as R

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🔁 Retention")
eda = ui.sidebar_filters()
c = st.columns(3)
grain = c[0].segmented_control("Cohort period", list(R.GRAINS), default="week", key="ret_grain") or "week"
basis = c[1].segmented_control("Cohort by", list(R.BASES), default="first_event", key="ret_basis",
                               format_func=R.BASIS_LABELS.get) or "first_event"
measure = c[2].segmented_control("Count users who are", list(R.MEASURES), default="active", key="ret_measure",
                                 format_func=R.MEASURE_LABELS.get) or "active"
st.caption(f"{md(eda.filters.describe())} · a cohort is the users whose {R.BASIS_LABELS[basis]} in the data falls "
           f"in that {grain} (weeks start Monday, UTC; a user's day is the day a session starts) · with a category "
           f"or brand filter the cohort is their first {grain} with an event there and only events there count · "
           f"the date range picks the cohorts and ends the periods, widened to whole {grain}s")

long = eda.q(R.cohorts, grain=grain, basis=basis, measure=measure)
if long.empty:
    what = "purchases" if basis == "first_purchase" else "users"
    st.info(f"No {what} to form cohorts with these filters ({md(eda.filters.describe())})."
            + (" Cohorts by first purchase need purchases: this store or selection has none; cohort by first event "
               "instead." if basis == "first_purchase" else " Widen the date range or choose another category."))
    st.stop()

sizes = R.cohort_sizes(long)
t = st.columns(3)
t[0].metric("Cohorts", f"{len(sizes):,}")
t[1].metric("Users in the cohorts", ui.compact(int(sizes["users"].sum())), help=f"{int(sizes['users'].sum()):,}")
t[2].metric("Largest cohort", ui.compact(int(sizes["users"].max())))

fig = R.heatmap_figure(long, grain, basis, measure)
st.plotly_chart(ui.style(fig, height=max(380, 70 + 34 * len(sizes))), width="stretch", key="ret-heatmap",
                config={"displaylogo": False})
st.caption("The first cohort also holds every user already active before the data starts, so its later periods "
           "run high. A period still running at the data's last day is partial (marked in the hover).")

st.subheader("Average retention curve")
lengths = R.curve_lengths(long)
if not lengths:
    st.info(f"No cohort has a complete {grain} after its first one yet: the curve needs a longer data span "
            f"(try weeks instead of months).")
else:
    last = st.select_slider(f"Follow the cohorts for (complete {grain}s after the first)", lengths,
                            value=lengths[len(lengths) // 2], key="ret_curve_len") if len(lengths) > 1 else lengths[0]
    curve = R.average_curve(long, last)
    st.plotly_chart(ui.style(R.curve_figure(curve, grain, measure)), width="stretch", key="ret-curve",
                    config={"displaylogo": False})
    st.caption(f"Weighted by cohort size, over the {int(curve['cohorts'].iloc[0])} cohorts that can be followed "
               f"for all {last + 1} {grain}s shown (later cohorts left out, so every point averages the same users; "
               "partial periods left out).")
    ui.table(curve, "retention_curve", "t-ret-curve", {"share": ui.pct("share")})

st.subheader("Cohorts")
ui.table(R.retention_matrix(long), f"retention_{grain}_{basis}_{measure}", "t-ret-matrix",
         {f"period {k}": ui.pct(f"{grain} {k}") for k in range(int(long["period"].max()) + 1)})
ui.table(long, "retention_cells", "t-ret-cells", {"share": ui.pct("share")}, height=250)
