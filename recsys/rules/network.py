"""Association rules as a directed graph (networkx) drawn by pyvis as one self-contained, offline HTML page.

Node = item (size by support, colour by top-level category, tooltip with label and stats); edge = rule
antecedent -> consequent (width by lift, tooltip with confidence and lift). Multi-item antecedents get one edge
per antecedent item.

Labels and tooltips are shop data (a brand may be ``<img src=x onerror=alert(1)>``): they reach the page only as
JSON inside a script (pyvis' ``tojson`` turns ``<``, ``>``, ``&`` and quotes into ``\\u003c``-style escapes), are
drawn on a canvas, and vis-network shows string tooltips with ``innerText`` (:func:`text_tooltip` keeps pyvis
from swapping in its innerHTML popup); :func:`clean_text` also drops control characters and caps the length.
Nothing from the data is ever parsed as HTML.
"""
from __future__ import annotations

import re
import unicodedata

import networkx as nx
import pandas as pd

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf")
OTHER_COLOUR = "#999999"
DEFAULT_TOP = 50
_CDN_TAG = re.compile(r"<(?:link|script)\b[^>]*https?://[^>]*>(?:\s*</script>)?", re.IGNORECASE)


def clean_text(value: object, limit: int = 200) -> str:
    """Plain text for a label or tooltip: control characters removed, length capped."""
    s = "".join(ch for ch in str(value) if ch in "\n" or unicodedata.category(ch)[0] != "C")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def category_colours(items: pd.DataFrame) -> dict[str, str]:
    """A colour per top-level category, most supported categories first (legend order)."""
    if items.empty or "top_category" not in items:
        return {}
    order = items.groupby("top_category")["support"].sum().sort_values(ascending=False).index
    return {str(c): PALETTE[i] if i < len(PALETTE) else OTHER_COLOUR for i, c in enumerate(order)}


def top_rules(rules: pd.DataFrame, top: int = DEFAULT_TOP) -> pd.DataFrame:
    """The ``top`` rules by lift (then confidence), as in the original analysis."""
    return rules.sort_values(["lift", "confidence"], ascending=False, kind="stable").head(int(top))


def rules_graph(rules: pd.DataFrame, items: pd.DataFrame, top: int = DEFAULT_TOP) -> nx.DiGraph:
    """Directed graph of the top rules: nodes carry label/support/colour, edges carry lift/confidence."""
    g = nx.DiGraph()
    chosen = top_rules(rules, top)
    info = items.set_index("item")
    colours = category_colours(items)
    max_support = float(info["support"].max()) if len(info) else 1.0
    for r in chosen.itertuples():
        for a in r.antecedent_items:
            for c in r.consequent_items:
                for node in (a, c):
                    if node not in g:
                        row = info.loc[node]
                        g.add_node(str(node), label=clean_text(row["label"], 60),
                                   title=clean_text(f"{row['label']}\ncategory: {row['top_category']}\n"
                                                    f"support: {row['support']:.3%} ({int(row['baskets']):,} baskets)"),
                                   size=float(10 + 30 * (row["support"] / max_support) ** 0.5),
                                   color=colours.get(str(row["top_category"]), OTHER_COLOUR),
                                   group=clean_text(row["top_category"], 60))
                prev = g.get_edge_data(str(a), str(c))
                if prev is not None and prev["lift"] >= r.lift:
                    continue
                g.add_edge(str(a), str(c), lift=float(r.lift), confidence=float(r.confidence),
                           title=clean_text(f"{r.antecedent} → {r.consequent}\nconfidence {r.confidence:.1%} · "
                                            f"lift {r.lift:.2f} · support {r.support:.3%}", 400))
    lifts = [d["lift"] for _, _, d in g.edges(data=True)]
    lo, hi = (min(lifts), max(lifts)) if lifts else (1.0, 1.0)
    for _, _, d in g.edges(data=True):
        d["width"] = float(1 + 7 * ((d["lift"] - lo) / (hi - lo) if hi > lo else 0.5))
    return g


def network_html(g: nx.DiGraph, height: int = 650, seed: int = 7) -> str:
    """Self-contained HTML (vis-network inlined, no CDN tag) drawing ``g``; deterministic layout seed."""
    from pyvis.network import Network
    net = Network(height=f"{int(height)}px", width="100%", directed=True, cdn_resources="in_line",
                  bgcolor="#ffffff", font_color="#222222")
    for node, d in g.nodes(data=True):
        net.add_node(str(node), label=d["label"], title=text_tooltip(d["title"]), size=d["size"], color=d["color"])
    for a, c, d in g.edges(data=True):
        net.add_edge(str(a), str(c), title=d["title"], width=d["width"], arrows="to", color="#8899aa")
    net.set_options(f"""{{"layout": {{"randomSeed": {int(seed)}}},
        "physics": {{"solver": "forceAtlas2Based", "stabilization": {{"iterations": 150}}}},
        "interaction": {{"hover": true, "tooltipDelay": 120}},
        "nodes": {{"font": {{"size": 12}}, "shape": "dot"}}, "edges": {{"smooth": {{"type": "continuous"}}}}}}""")
    return strip_cdn(net.generate_html())


def text_tooltip(title: str) -> str:
    """A node title that keeps pyvis on vis-network's text tooltip.

    pyvis 0.3.2 switches the whole page to its own popup (``popup.innerHTML = title``: every title becomes live
    HTML) as soon as any node title contains the substring ``href``. A zero-width space inside that word keeps it
    out of the check; the tooltip reads the same."""
    return title.replace("href", "hre\u200bf")


def strip_cdn(html: str) -> str:
    """Remove every ``<link>``/``<script>`` tag that points outside (pyvis always links Bootstrap)."""
    return _CDN_TAG.sub("", html)
