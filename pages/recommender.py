"""Recommender explorer: pick a user (or play a new visitor), see what the store serves and why, beside the
two-tower's own list; the diversity slider re-ranks the served list."""
import streamlit as st

from ui.common import md, root, version
from ui.router import require_router
from ui.recommender import (category_mix, pick_user, product_choices, profile, service, show_list,
                                  show_metrics, show_profile, telling_users)

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🎯 Recommender explorer")
ver = version("events", "model", "index")
svc = service(str(root()), ver)
info = svc.info()
st.caption(f"Served by the {info['served']} over {info['items']:,} products and {info['users']:,} users "
           f"(two-tower candidates from a {info['index'].get('kind', '?')} index"
           f"{', plus own, co-occurrence and trending items, ordered by a LightGBM ranker' if svc.ranker else ''}), "
           f"re-ranked for category diversity (MMR); each item says why, from its strongest evidence. Repurchase rate "
           f"{info['repurchase_rate']:.1%}, so purchased items are "
           f"{'hidden' if info['exclude_purchased_default'] else 'kept'} by default.")

mode = st.radio("Who is shopping?", ["Known user", "New visitor"], horizontal=True, key="rec_mode")
c1, c2, c3 = st.columns([3, 1, 2])
weight = c1.slider("Diversity weight", 0.0, 1.0, 0.3, 0.05, key="rec_div",
                   help="0 = pure relevance; 1 = as many categories as the candidate pool allows")
top_n = c2.number_input("Items", 3, 30, 10, key="rec_topn")
if mode == "Known user":
    excl = c3.toggle("Hide already purchased", info["exclude_purchased_default"], key="rec_excl")
    uid = pick_user(telling_users(str(root()), ver))
    if uid is None:
        st.stop()
    try:
        chosen = svc.recommend_for_user(uid, int(top_n), weight, exclude_purchased=excl)
        pure = svc.recommend_for_user(uid, int(top_n), 0.0, exclude_purchased=excl)
        base = svc.two_tower_for_user(uid, int(top_n), exclude_purchased=excl)
        user = profile(str(root()), ver, uid)  # before its heading: no new heading over the previous user's tiles
    except KeyError as exc:
        st.warning(f"{md(exc.args[0])}. Pick a telling user or try another id.")
        st.stop()
    show_profile(user)
else:
    choices = product_choices(str(root()), ver)
    picked = st.multiselect("Products the visitor viewed", list(choices), default=list(choices)[:2],
                            key="rec_products", max_selections=10)
    if not picked:
        st.info("Choose one or more products the new visitor looked at.")
        st.stop()
    ids = [choices[p] for p in picked]
    chosen = svc.recommend_for_products(ids, int(top_n), weight)
    pure = base = svc.recommend_for_products(ids, int(top_n), 0.0)

st.subheader(f"Recommendations at diversity weight {weight:.2f}")
show_metrics(chosen, pure)
served_by = info["served"] if mode == "Known user" else "two-tower (a new visitor has no ranker features)"
left, right = st.columns(2)
for col, df, title, mix, key in (
        (left, chosen, f"Served by the {served_by}", f"Category mix at weight {weight:.2f}", "rec_list"),
        (right, base, "The two-tower's own list (its retrieval order)", "Category mix of the two-tower's list",
         "rec_tt")):
    with col:
        st.markdown(f"**{title}**")
        show_list(df, key)
        category_mix(df, mix, f"{key}_mix")
