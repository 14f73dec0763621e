"""Brands & categories: top-N rankings, the category tree, prices per category and conversion by price band."""
import streamlit as st

from recsys.aggregates import catalog as eda_catalog, charts
from ui import eda as ui
from ui.common import md
from ui.router import require_router

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🏷️ Brands & categories")
eda = ui.sidebar_filters()
st.caption(f"{md(eda.filters.describe())} · conversion = purchases / views · prices of 0 are left out of prices")

c = st.columns([2, 2, 1])
by = c[0].selectbox("Rank by", ["revenue", "purchases", "views", "view_to_purchase"], key="rank_by",
                    format_func=lambda b: {"view_to_purchase": "conversion (purchases / views)"}.get(b, b))
n = c[1].slider("Top N", 5, 40, 15, key="top_n")
min_views = c[2].number_input("Min views (conversion)", 1, 1_000_000, 100, key="min_views",
                              help="Only values with at least this many views enter a conversion ranking")
brands = eda.q(eda_catalog.top_n, dim="brand", by=by, n=n, min_views=min_views)
cats = eda.q(eda_catalog.top_n, dim="category_code", by=by, n=n, min_views=min_views)
if brands.empty and cats.empty:
    ui.nothing_matches(eda, "events" if by != "view_to_purchase" else f"brands or categories with {min_views:,}+ views")

fmt = {"revenue": ui.money("revenue"), "cart_rate": ui.pct("cart / view"), "purchase_rate": ui.pct("purchase / cart"),
       "view_to_purchase": ui.pct("purchase / view"), "removes_per_cart": ui.pct("removes / cart")}
left, right = st.columns(2)
with left:
    eda.chart(charts.top_bars, eda_catalog.top_n, "brand", by, "brands", dim="brand", by=by, n=n, min_views=min_views,
              key="top-brands", height=max(380, 22 * len(brands)))
    ui.table(brands, "top_brands", "t-brands", fmt, height=250)
with right:
    eda.chart(charts.top_bars, eda_catalog.top_n, "category_code", by, "categories", dim="category_code", by=by, n=n,
              min_views=min_views, key="top-cats", height=max(380, 22 * len(cats)))
    ui.table(cats, "top_categories", "t-cats", fmt, height=250)

st.subheader("Category hierarchy")
size = st.segmented_control("Size by", ["views", "purchases", "revenue"], default="views", key="tree_size") or "views"
eda.chart(charts.treemap, eda_catalog.category_tree, size, key="treemap", height=560)

st.subheader("Prices")
left, right = st.columns(2)
with left:
    prices = eda.q(eda_catalog.price_distribution, n=12)
    if prices.empty:
        st.info("No priced views match these filters.")
    else:
        eda.chart(charts.price_boxes, eda_catalog.price_distribution, n=12, key="prices", height=max(380, 30 * len(prices)))
with right:
    bands = eda.q(eda_catalog.conversion_by_price_band)
    eda.chart(charts.price_bands, eda_catalog.conversion_by_price_band, key="bands")
ui.table(bands, "conversion_by_price_band", "t-bands", fmt)
