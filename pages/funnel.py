"""Funnel: view -> cart -> purchase overall, per month, per category and brand, per session; abandonment."""
import streamlit as st

from recsys.aggregates import charts, funnel as eda_funnel
from ui import eda as ui
from ui.common import md
from ui.router import require_router

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🔻 Funnel")
eda = ui.sidebar_filters()
st.caption(f"{md(eda.filters.describe())} · times in UTC · rates divide event counts (purchases can exceed carts: "
           "a purchase does not always follow a cart event)")
t = eda.q(eda_funnel.funnel_totals)
if not t["views"] + t["carts"] + t["purchases"] + t["removes"]:
    ui.nothing_matches(eda)

c = st.columns(6)
c[0].metric("Views", ui.compact(t["views"]), help=f"{t['views']:,} view events")
c[1].metric("Carts", ui.compact(t["carts"]), f"{t['cart_rate']:.2%} of views", delta_color="off",
            help=f"{t['carts']:,} cart events")
c[2].metric("Purchases", ui.compact(t["purchases"]), f"{t['view_to_purchase']:.2%} of views", delta_color="off",
            help=f"{t['purchases']:,} purchase events")
c[3].metric("Purchases / carts", f"{t['purchase_rate']:.1%}")
c[4].metric("Revenue", ui.compact(t["revenue"], money=True), help=f"${t['revenue']:,.2f}")
c[5].metric("Removed from cart", ui.compact(t["removes"]),
            f"{t['removes_per_cart']:.1%} of carts" if t["removes"] else "none in this data", delta_color="off")

left, right = st.columns(2)
with left:
    eda.chart(charts.funnel, eda_funnel.funnel_steps, key="funnel")
with right:
    eda.chart(charts.session_funnel, eda_funnel.session_funnel, key="session-funnel")
ab = eda.q(eda_funnel.cart_abandonment)
st.markdown(f"**Cart abandonment:** {ab['abandoned']:,} of {ab['cart_sessions']:,} sessions with a cart did not buy "
            f"(**{ab['abandonment_rate']:.1%}**)" + (f"; {ab['cart_and_remove']:,} of them removed an item."
                                                     if ab["cart_and_remove"] else "."))

months = eda.q(eda_funnel.funnel_by_month)
st.subheader("Per month" + (" (side by side)" if len(months) > 1 else ""))
eda.chart(charts.rates_by, eda_funnel.funnel_by_month, "month", "Conversion rates per month (UTC)", "month", key="months")
ui.table(months, "funnel_by_month", "t-months", {"revenue": ui.money("revenue"), "cart_rate": ui.pct("cart / view"),
         "purchase_rate": ui.pct("purchase / cart"), "view_to_purchase": ui.pct("purchase / view"),
         "removes_per_cart": ui.pct("removes / cart")})

st.subheader("Per top category and brand")
n = st.slider("How many (by views)", 5, 30, 10, key="funnel_n")
for dim, label, plural in (("category_top", "top-level category", "top-level categories"),
                           ("brand", "brand", "brands")):
    df = eda.q(eda_funnel.funnel_by, dim=dim, n=n)
    eda.chart(charts.rates_by, eda_funnel.funnel_by, dim, f"Conversion rates of the top {len(df)} {plural} by views",
              label, dim=dim, n=n, key=f"by-{dim}")
    ui.table(df, f"funnel_by_{dim}", f"t-{dim}", {"revenue": ui.money("revenue"), "cart_rate": ui.pct("cart / view"),
             "purchase_rate": ui.pct("purchase / cart"), "view_to_purchase": ui.pct("purchase / view"),
             "removes_per_cart": ui.pct("removes / cart")})
