"""Affinity: association rules between items as an interactive network, a rules table and category complements."""
from dataclasses import asdict

import streamlit as st

from ui.affinity import (RULE_COLUMNS, complements_for, complements_heatmap, legend, network_for, rules_for,
                               rules_table, settings)
from ui.common import download_csv, root, version
from ui.router import require_router

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🕸️ Product affinity")
rd, ver = str(root()), version("events", "rules")
params = settings(rd, ver)
key = tuple(sorted(asdict(params).items()))
try:
    res = rules_for(rd, ver, key)
except ValueError as exc:  # a guard: the settings would explode
    st.warning(f"{exc}")
    st.stop()
s, per = res.stats, params.basket.replace("_", " and ")
st.caption(f"{s.get('baskets', 0):,} baskets ({params.scope.replace('_', ' + ')} per {per}) · "
           f"{s.get('multi_item_baskets', 0):,} with 2+ frequent items · {s.get('frequent_items', 0):,} frequent "
           f"items · {len(res.rules):,} rules · min support {s.get('params', {}).get('min_support') or 0:.4%}"
           f"{' (auto)' if params.min_support is None else ''} of all baskets")
if s.get("note"):
    st.warning(s["note"])

net, table, item, cats = st.tabs(["🕸️ Network", "📋 Rules", "🔍 Item", "🧩 Category complements"])
with net:
    if res.rules.empty:
        st.info("No rules at these thresholds: lower the min support, confidence or lift, or pick a coarser item "
                "(category, brand) or the views scope.")
    else:
        n = len(res.rules)
        top = st.slider("Rules drawn (top by lift)", 1, min(n, 300), min(n, 50), key="aff-top") if n > 1 else 1
        html, colours, nodes = network_for(rd, ver, key, top)
        legend(colours)
        st.iframe(html, height=680)
        st.caption(f"{nodes} items, top {top} rules · node size = support, edge width = lift · hover for details, "
                   "drag to rearrange, scroll to zoom")
with table:
    st.dataframe(rules_table(res.rules), width="stretch", hide_index=True, column_config=RULE_COLUMNS,
                 key="aff-rules")
    download_csv(rules_table(res.rules), "association-rules", key="aff-dl-rules")
with item:
    from recsys.rules.mining import item_rules, items_with_rules, neighbours
    choices = items_with_rules(res)
    if choices.empty:
        st.info("No item has rules at these thresholds.")
    else:
        by_label = dict(zip(choices["label"], choices["item"]))
        pick = by_label[st.selectbox("Item", list(by_label), key="aff-item")]
        st.markdown("**Neighbours** (items sharing a rule)")
        st.dataframe(neighbours(res.rules, res.items, pick), width="stretch", hide_index=True, key="aff-neigh")
        st.markdown("**Its rules**")
        st.dataframe(rules_table(item_rules(res.rules, pick)), width="stretch", hide_index=True,
                     column_config=RULE_COLUMNS, key="aff-item-rules")
with cats:
    cc = complements_for(rd, ver, params.basket)
    st.markdown(f"Each category's top-3 co-purchased categories (purchase baskets per {per}).")
    if cc.empty:
        st.info("No basket holds purchases from two categories yet.")
    else:
        least = st.number_input("Min baskets bought together", 1, max(int(cc["baskets"].max()), 1), 1,
                                key="aff-cc-min", help="hide pairs seen in fewer purchase baskets (noise)")
        cc = cc[cc["baskets"] >= least]
        st.dataframe(cc, width="stretch", hide_index=True, column_config=RULE_COLUMNS, key="aff-cc")
        download_csv(cc, "category-complements", key="aff-dl-cc")
        complements_heatmap(cc)
