"""Overview: headline KPIs, where the data comes from, and what cleaning did to it."""
import pandas as pd
import streamlit as st

from pages.common import md, quality_report, root, store_kpis, version

st.title("🏠 Store overview")
ver = version("events")
k = store_kpis(str(root()), ver)
q = quality_report(str(root()), ver)

source = "the built-in demo store (synthetic, deterministic)" if q["source"] == "demo" else \
    ", ".join(md(f) for f in q["files"])
span = f"{k['first_event']:%Y-%m-%d %H:%M} → {k['last_event']:%Y-%m-%d %H:%M} UTC"
st.caption(f"Data: {source} · {span} · artifacts in {md(root())}")

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

st.subheader("Events by type")
types = pd.DataFrame({"event_type": ["view", "cart", "purchase", "remove_from_cart"],
                      "events": [k["views"], k["carts"], k["purchases"], k["removes"]]})
types["share"] = (types["events"] / max(k["events"], 1)).map("{:.2%}".format)
st.dataframe(types, hide_index=True, width="content")

st.subheader("Data quality")
dropped = pd.DataFrame([{"step": "rows read", "rows": q["rows_read"]}]
                       + [{"step": f"dropped: {r.replace('_', ' ')}", "rows": n} for r, n in q["dropped"].items()]
                       + [{"step": "rows kept", "rows": q["rows_kept"]}])
filled = pd.DataFrame([{"fill": f.replace("_", " "), "rows": n} for f, n in q["filled"].items()])
left, right = st.columns(2)
left.markdown("**Rows read, dropped and kept** (read = kept + every drop)")
left.dataframe(dropped, hide_index=True, width="stretch", key="quality-rows")
right.markdown("**Missing values filled**")
right.dataframe(filled, hide_index=True, width="stretch", key="quality-filled")
st.caption(f"Prices of exactly 0 kept as real behaviour (excluded from price statistics): {q['price_zero_kept']:,} rows.")
if q["unparsable_samples"]:
    st.markdown("**First unparsable lines (skipped)**")
    st.dataframe(pd.DataFrame(q["unparsable_samples"]), hide_index=True, width="stretch", key="quality-bad")
with st.expander("Cleaning rules"):
    st.markdown(q["rules"])
