"""Evaluation: every recommender against the baselines on one temporal split, with the protocol in words."""
import pandas as pd
import streamlit as st

from ui.common import download_csv, root, version
from ui.router import require_router
from ui.evaluation import METRIC_LABELS, evaluation, metric_bars, tradeoff_curve, verdict
from recsys.evaluation.protocol import TARGET_LABELS
from recsys.evaluation.stage import results_table, select, test_window

require_router()  # before anything draws: a page running alone goes through app.py

st.title("🧪 Offline evaluation")
results, curve, s = evaluation(str(root()), version("events", "evaluation"))
labels = s["labels"]
cut = pd.Timestamp(s["cut"]).strftime("%Y-%m-%d %H:%M UTC")
st.caption(f"Trained before {cut} · tested on the next {test_window(s)} · {s['train_events']:,} training "
           f"and {s['test_events']:,} test events · every model ranks all {s['n_items']:,} catalog items")
for note in s["notes"]:
    st.info(note)

c = st.columns(4)
variants = sorted(results["targets"].unique(), key=list(TARGET_LABELS).index)
targets = c[0].radio("Targets", variants, format_func=TARGET_LABELS.get, key="eval-targets", horizontal=True)
exclude_seen = c[1].toggle("Exclude items seen in training", key="eval-exclude-seen",
                           help="On: lists and targets leave out what the user already touched (discovery).")
metric = c[2].selectbox("Metric", list(METRIC_LABELS), format_func=METRIC_LABELS.get, key="eval-metric")
k = c[3].selectbox("K", sorted(results["k"].unique()), index=1, key="eval-k")
sel = select(results, targets=targets, exclude_seen=exclude_seen)
if sel.empty:
    st.warning("No results for this setting (see the notes above).")
    st.stop()
v = verdict(sel, labels)
if v:
    getattr(st, v[0])(v[1])

st.plotly_chart(metric_bars(sel, metric, int(k), labels), key="eval-bars")
table = results_table(results, targets=targets, exclude_seen=exclude_seen)
table.index = [labels.get(m, m) for m in table.index]
st.dataframe(table.style.format("{:.4f}"), width="stretch", key="eval-table")
download_csv(sel, f"evaluation-{targets}-{'unseen' if exclude_seen else 'all'}", key="eval-dl")
st.caption(f"{int(sel['n_users'].max()):,} test users · sorted by NDCG@20 · novelty in bits (higher = less popular)")

st.subheader("Accuracy vs diversity (two-tower + MMR re-ranking)")
if curve.empty:
    st.info("The two-tower was not evaluated, so there is no accuracy-diversity curve (see the notes above).")
else:
    st.plotly_chart(tradeoff_curve(curve), key="eval-curve")

with st.expander("The protocol in words", expanded=False):
    st.markdown(s["protocol"])
    st.markdown("**Users scored:** " + ", ".join(f"{k_}: {n:,}" for k_, n in s["users"].items()))
    st.dataframe(s["timings"], key="eval-timings")
