"""App-side helpers of the Evaluation page: the cached loader and its charts (no computation beyond drawing)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from recsys.aggregates.charts import plotly_text

METRIC_LABELS = {"ndcg": "NDCG", "recall": "Recall", "hit_rate": "HitRate", "mrr": "MRR",
                 "coverage": "Catalog coverage", "diversity": "Intra-list category diversity",
                 "novelty": "Novelty (bits)"}


@st.cache_data(show_spinner=False)
def evaluation(root_dir: str, ver: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Results, accuracy-diversity curve and summary of the built evaluation stage."""
    from recsys.evaluation.stage import load_evaluation
    res = load_evaluation(root_dir)
    return res.results, res.curve, res.summary


def metric_bars(sel: pd.DataFrame, metric: str, k: int, labels: dict[str, str]) -> go.Figure:
    """One bar per model for metric@k with its 95% bootstrap interval, best first."""
    d = sel[(sel["metric"] == metric) & (sel["k"] == k)].sort_values("value", ascending=False)
    names = [plotly_text(labels.get(m, m)) for m in d["model"]]
    colours = ["#d62728" if m.startswith("two_tower") else "#1f77b4" for m in d["model"]]
    fig = go.Figure(go.Bar(
        x=names, y=d["value"], marker_color=colours,
        error_y=dict(type="data", symmetric=False, array=d["ci_high"] - d["value"],
                     arrayminus=d["value"] - d["ci_low"]),
        customdata=d[["ci_low", "ci_high", "n_users"]].to_numpy(),
        hovertemplate="%{x}<br>" + f"{METRIC_LABELS.get(metric, metric)}@{k}" + " = %{y:.4f}<br>95% CI "
                      "%{customdata[0]:.4f} – %{customdata[1]:.4f}<br>%{customdata[2]} users<extra></extra>"))
    fig.update_layout(title=f"{METRIC_LABELS.get(metric, metric)}@{k} by model (95% bootstrap CI over users; "
                            "two-tower in red)",
                      xaxis_title="model", yaxis_title=f"{METRIC_LABELS.get(metric, metric)}@{k} (mean over users)",
                      height=430, margin=dict(t=60, b=10))
    return fig


def tradeoff_curve(curve: pd.DataFrame) -> go.Figure:
    """NDCG@K against intra-list category diversity@K over the MMR diversity weights."""
    k = int(curve["k"].iloc[0])
    fig = go.Figure(go.Scatter(
        x=curve["diversity"], y=curve["ndcg"], mode="lines+markers+text",
        text=[f"w={w:g}" for w in curve["diversity_weight"]], textposition="top right",
        error_y=dict(type="data", symmetric=False, array=curve["ndcg_ci_high"] - curve["ndcg"],
                     arrayminus=curve["ndcg"] - curve["ndcg_ci_low"]),
        customdata=curve[["diversity_weight", "recall", "coverage", "n_users"]].to_numpy(),
        hovertemplate="diversity weight %{customdata[0]:.1f}<br>NDCG@" + str(k) + " %{y:.4f}<br>category "
                      "diversity %{x:.3f}<br>Recall %{customdata[1]:.4f}<br>coverage %{customdata[2]:.2%}<br>"
                      "%{customdata[3]} users<extra></extra>"))
    fig.update_layout(title=f"Two-tower accuracy vs diversity over the MMR weight (K={k}, carts + purchases)",
                      xaxis_title=f"intra-list category diversity@{k} (share of pairs from different categories)",
                      yaxis_title=f"NDCG@{k}", height=430, margin=dict(t=60, b=10))
    return fig


def verdict(sel: pd.DataFrame, labels: dict[str, str], metric: str = "ndcg", k: int = 20) -> tuple[str, str] | None:
    """(level, sentence) comparing the served model (two-tower + ranker, else the two-tower) with the best baseline
    on metric@k, or None without either."""
    d = sel[(sel["metric"] == metric) & (sel["k"] == k)].set_index("model")
    served = next((m for m in ("two_tower_ranker", "two_tower") if m in d.index), None)
    if served is None:
        return None
    base = d[~d.index.str.startswith("two_tower")]
    if base.empty:
        return None
    best = base["value"].idxmax()
    tt, b = d.loc[served], d.loc[best]
    name, who = f"{METRIC_LABELS[metric]}@{k}", labels.get(served, served)
    text = (f"{who} {name} = {tt['value']:.4f} (95% CI {tt['ci_low']:.4f}–{tt['ci_high']:.4f}); best baseline "
            f"{labels.get(best, best)} = {b['value']:.4f} ({b['ci_low']:.4f}–{b['ci_high']:.4f}).")
    if tt["value"] >= b["value"]:
        return "success", f"{who} beats every baseline here. " + text
    beaten = [labels.get(m, m) for m in base.index if base.loc[m, "value"] > tt["value"]]
    return "warning", f"{who} loses to {', '.join(beaten)} here. " + text
