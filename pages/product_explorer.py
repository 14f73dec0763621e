"""Product explorer: find a product, see its card, its substitutes and what is bought with it."""
import streamlit as st

from ui.common import md, root, version
from ui.router import require_router
from ui.product import card_heading, pick_product, product_service, show_list, store_defaults

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🔎 Product explorer")
ver = version("events", "products", "model")
svc = product_service(str(root()), ver)
st.caption("Find a product by text search, id or a telling example. Funnel figures count every event of the "
           "store; lists are precomputed at build time.")
pid = pick_product(svc, store_defaults(str(root()), ver))
if pid is None:
    st.stop()
try:
    card = svc.card(pid)
except KeyError as exc:
    st.warning(f"{md(exc.args[0])}. Search for it by name instead, or pick a telling product.")
    st.stop()

title, caption = card_heading(card)
st.subheader(title)
if caption:
    st.caption(caption)
c = st.columns(4)
c[0].metric("Price", f"${card['price']:,.2f}", help=f"{card['price_band']} within its category")
c[1].metric("Views", f"{card['views']:,}")
c[2].metric("Carts", f"{card['carts']:,}")
c[3].metric("Purchases", f"{card['purchases']:,}")
c = st.columns(4)
c[0].metric("Price band", card["price_band"], help="tercile of the price within the product's category")
c[1].metric("Cart rate", f"{card['cart_rate']:.1%}", help="carts per view")
c[2].metric("Purchase rate", f"{card['purchase_rate']:.1%}", help="purchases per view")
c[3].metric("Buyers · revenue", f"{card['buyers']:,} · ${card['revenue']:,.0f}")

k = st.slider("Items per list", 3, 20, 8, key="product_k")
left, right = st.columns(2)
with left:
    st.subheader("Similar products")
    lists = svc.similar(pid, k)
    nb = lists["neighbours"]
    emb = len(nb) and nb["source"].iat[0] == "embedding"
    show_list(nb, "**Nearest in the two-tower item space** (embedding neighbours)" if emb else
              "**Feature neighbours**: same category, brand and price level (no model embedding for this product)",
              "No other product shares this product's category.", "similar-neighbours")
    show_list(lists["co_view"], "**Co-view substitutes**: viewed in the same sessions, at most one of the two bought",
              "No co-view substitutes: too few sessions viewed this product with others (cold start).", "similar-coview")
with right:
    st.subheader("Complementary products")
    show_list(svc.complements(pid, k), "**Bought together** by the same user (same session or within "
              f"{svc.manifest['params']['copurchase_days']:g} days), ranked by lift with at least "
              f"{svc.manifest['params']['min_copurchase_users']} co-buyers; then the best item of each top "
              "complementary category", "No complements: nobody bought this product together with another, and its "
              "category has no complementary categories yet.", "complements")
