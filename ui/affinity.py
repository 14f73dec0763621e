"""App-side helpers of the Affinity page: cached loaders (built rules, on-demand mining) and the settings widgets.

Loaders take (root_dir, ver, params...) and never frames; mining with thresholds other than the built defaults is
cached per (root, version, parameters).
"""
from __future__ import annotations

import html
from dataclasses import asdict, replace
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from recsys.aggregates.charts import plotly_text
from recsys.rules.complements import category_complements_con, complements_matrix
from recsys.rules.mining import RulesResult, mine_rules
from recsys.rules.params import ALGORITHMS, BASKETS, GRANULARITIES, SCOPES, RuleParams
from recsys.rules.stage import load_rules, requested_params

SUPPORTS = [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
LABELS = {"session": "session", "user_day": "user and day (UTC)", "purchases": "purchases",
          "purchases_carts": "purchases + carts", "views": "views (co-view affinity)", "product": "product",
          "category": "category (leaf)", "top_category": "top-level category", "brand": "brand",
          "apriori": "Apriori", "fpgrowth": "FP-growth (faster, same rules)"}


@st.cache_data(show_spinner=False)
def built_params(root_dir: str, ver: str) -> dict[str, Any]:
    """The settings the build mined with (min support None = auto)."""
    return asdict(requested_params(root_dir))


@st.cache_data(show_spinner="Mining rules with these settings…", max_entries=32)
def rules_for(root_dir: str, ver: str, params: tuple) -> RulesResult:
    """The built rules when ``params`` are the stage's, else rules mined now (cached per settings)."""
    p = RuleParams(**dict(params))
    if asdict(p) == built_params(root_dir, ver):
        return load_rules(root_dir)
    return mine_rules(root_dir, p)


@st.cache_data(show_spinner=False, max_entries=8)
def complements_for(root_dir: str, ver: str, basket: str) -> pd.DataFrame:
    if basket == built_params(root_dir, ver)["basket"]:
        return load_rules(root_dir).stats["complements"]
    from recsys.artifacts import connect
    con = connect(root_dir)
    try:
        return category_complements_con(con, basket)
    finally:
        con.close()


@st.cache_data(show_spinner=False, max_entries=16)
def network_for(root_dir: str, ver: str, params: tuple, top: int) -> tuple[str, dict[str, str], int]:
    """(pyvis HTML, legend colours, nodes drawn) for the top rules."""
    from recsys.rules.network import category_colours, network_html, rules_graph
    res = rules_for(root_dir, ver, params)
    g = rules_graph(res.rules, res.items, top)
    used = {d["group"] for _, d in g.nodes(data=True)}
    legend = {c: col for c, col in category_colours(res.items).items() if c in used}
    return network_html(g), legend, g.number_of_nodes()


def settings(root_dir: str, ver: str) -> RuleParams:
    """The mining-settings widgets (defaults: the built stage's parameters)."""
    d = RuleParams(**built_params(root_dir, ver))
    supports = ["auto"] + sorted(set(SUPPORTS) | ({d.min_support} - {None}))
    with st.expander("Mining settings", expanded=False):
        c = st.columns(4)
        basket = _choice(c[0], "Basket", BASKETS, d.basket, "aff-basket")
        scope = _choice(c[1], "Events", tuple(SCOPES), d.scope, "aff-scope")
        gran = _choice(c[2], "Item", GRANULARITIES, d.granularity, "aff-gran")
        algo = _choice(c[3], "Algorithm", ALGORITHMS, d.algorithm, "aff-algo")
        c = st.columns(4)
        support = c[0].select_slider("Min support (share of baskets)", supports, value=d.min_support or "auto",
                                     format_func=lambda v: v if v == "auto" else f"{v:.3%}",
                                     help="auto: the support of the 100th most frequent item pair (at least "
                                          "3 baskets), which gives tens to a few hundred rules at any store size",
                                     key="aff-support")
        conf = c[1].slider("Min confidence", 0.0, 1.0, float(d.min_confidence), 0.01, key="aff-conf")
        lift = c[2].slider("Min lift", 0.0, 20.0, float(d.min_lift), 0.1, key="aff-lift")
        max_len = c[3].slider("Max itemset size", 2, 5, int(d.max_len), key="aff-maxlen")
    return replace(d, basket=basket, scope=scope, granularity=gran, algorithm=algo,
                   min_support=None if support == "auto" else support,
                   min_confidence=conf, min_lift=lift, max_len=max_len)


def _choice(where, label: str, values: tuple[str, ...], default: str, key: str) -> str:
    """A selectbox showing readable names (plain strings, so AppTest can set them) that returns the value."""
    names = [LABELS[v] for v in values]
    shown = where.selectbox(label, names, index=values.index(default), key=key)
    return values[names.index(shown)]


def legend(colours: dict[str, str]) -> None:
    """Coloured swatches naming each top-level category (names escaped: they are data)."""
    spans = "".join(f'<span style="margin-right:14px;white-space:nowrap"><span style="display:inline-block;'
                    f'width:12px;height:12px;border-radius:6px;background:{col};margin-right:4px"></span>'
                    f"{html.escape(name)}</span>" for name, col in colours.items())
    st.html(f'<div style="font-size:0.9em;line-height:1.8">Colour = top-level category: {spans}</div>')


def rules_table(rules: pd.DataFrame) -> pd.DataFrame:
    """The columns a user reads, in order."""
    return rules[["antecedent", "consequent", "support", "confidence", "lift", "leverage", "conviction",
                  "baskets", "antecedent_len"]]


RULE_COLUMNS = {
    "support": st.column_config.NumberColumn("support", format="%.4f", help="share of all baskets with both sides"),
    "confidence": st.column_config.NumberColumn("confidence", format="%.3f", help="P(consequent | antecedent)"),
    "lift": st.column_config.NumberColumn("lift", format="%.2f", help="confidence / consequent support"),
    "leverage": st.column_config.NumberColumn("leverage", format="%.5f"),
    "conviction": st.column_config.NumberColumn("conviction", format="%.2f"),
}


def complements_heatmap(cc: pd.DataFrame) -> None:
    """Lift of each big category's top complements as a heatmap."""
    m = complements_matrix(cc, "lift", 15)
    if not m.empty:
        st.plotly_chart(complements_figure(m), key="aff-heatmap")


def complements_figure(m: pd.DataFrame) -> go.Figure:
    """The category x complement lift matrix as a heatmap."""
    fig = px.imshow(m.rename(index=plotly_text, columns=plotly_text), color_continuous_scale="Blues", aspect="auto",
                    labels={"x": "complementary category", "y": "category", "color": "lift"},
                    title="Top-3 co-purchased categories: lift (blank = not in the top 3)")
    fig.update_traces(hovertemplate="%{y} → %{x}<br>lift %{z:.2f}<extra></extra>")
    return fig.update_layout(height=560, margin={"l": 10, "r": 10, "t": 50, "b": 10})
