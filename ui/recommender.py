"""App-side helpers of the Recommender explorer: cached loaders, the user picker and its charts."""
from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ui.common import md
from recsys.aggregates.charts import plotly_columns
from recsys.serving.service import RecommenderService, load_recommender_service

EVENT_COLORS = {"view": "#9aa5b1", "cart": "#f5a623", "purchase": "#2e7d32", "remove_from_cart": "#c62828"}


@st.cache_resource(show_spinner="Loading the two-tower model and its index...")
def service(root_dir: str, ver: str) -> RecommenderService:
    """The model, embeddings, FAISS index and label arrays, loaded once per build."""
    return load_recommender_service(root_dir, prefetch_state=False)  # the page makes one call, not hundreds


@st.cache_data(show_spinner=False)
def telling_users(root_dir: str, ver: str) -> dict[str, list[int]]:
    from recsys.model.profiles import telling_users as tell
    return tell(root_dir)


@st.cache_data(show_spinner=False, max_entries=64)
def profile(root_dir: str, ver: str, user_id: int) -> dict[str, Any]:
    from recsys.model.profiles import user_profile
    return user_profile(root_dir, user_id)


@st.cache_data(show_spinner=False)
def product_choices(root_dir: str, ver: str) -> dict[str, int]:
    """Labels -> product ids of the most viewed products (new-visitor mode)."""
    from recsys.ingest.adapters import load_product_names
    from recsys.model.profiles import popular_products
    df = popular_products(root_dir)
    names = load_product_names(root_dir)  # a store with names (UCI) is labelled by them, not unknown_brand
    named = dict(zip(names["product_id"], names["name"])) if names is not None else {}
    return {f"{named.get(r.product_id) or f'{r.brand} · ' + str(r.category_code).split('.')[-1]} · ${r.price:,.2f} · "
            f"#{r.product_id}": int(r.product_id) for r in df.itertuples()}


def pick_user(examples: dict[str, list[int]]) -> int | None:
    """Quick picks of telling users plus a search-by-id box (the id box wins when filled)."""
    options = {f"{kind} · {uid}": uid for kind, ids in examples.items() for uid in ids}
    left, right = st.columns([3, 2])
    pick = left.selectbox("Quick pick: a telling user", list(options), key="rec_pick",
                          help="Heavy buyers, browsers who never buy, single-category fans, short histories")
    example = next(iter(options.values()), None)  # a user of this store, not a REES46 id
    typed = right.text_input("…or search by user id", key="rec_user",
                             placeholder=f"e.g. {example}" if example is not None else "")
    if typed.strip():
        if not typed.strip().isdigit():
            st.warning(f"'{md(typed)}' is not a user id: ids are whole numbers.")
            return None
        return int(typed.strip())
    return options.get(pick)


def show_profile(p: dict[str, Any]) -> None:
    """One user's heading, totals, history timeline and top categories / brands, all from the one computed profile
    ``p`` and drawn in one go (the figure is built first), so no heading stands over another user's tiles."""
    t, timeline = p["totals"], timeline_figure(p["timeline"])
    with st.expander(f"Profile of user {p['user_id']}", expanded=True):
        c = st.columns(6)
        c[0].metric("Events", f"{t['events']:,}")
        c[1].metric("Sessions", f"{t['sessions']:,}")
        c[2].metric("Products", f"{t['products']:,}")
        c[3].metric("Carts", f"{t['carts']:,}")
        c[4].metric("Purchases", f"{t['purchases']:,}")
        c[5].metric("Spend", f"${t['spend']:,.0f}")
        st.plotly_chart(timeline, width="stretch", key="rec_timeline")
        left, right = st.columns(2)
        left.dataframe(p["top_categories"], hide_index=True, width="stretch", key="rec_top_cats")
        right.dataframe(p["top_brands"], hide_index=True, width="stretch", key="rec_top_brands")


def timeline_figure(tl: pd.DataFrame) -> go.Figure:
    """One user's recent events over time, one row per event type, product details on hover."""
    fig = px.scatter(plotly_columns(tl, "brand", "category_code"), x="event_time", y="event_type", color="event_type",
                     color_discrete_map=EVENT_COLORS,
                     hover_data=["product_id", "brand", "category_code", "price"],
                     title=f"History timeline (last {len(tl)} events)",
                     labels={"event_time": "Event time (UTC)", "event_type": "Event type"})
    return fig.update_layout(height=260, showlegend=False, margin=dict(t=40, b=10))


def show_metrics(df: pd.DataFrame, baseline: pd.DataFrame | None = None) -> None:
    """Diversity, coverage and mean relevance of a list (deltas against the weight-0 list when given)."""
    a = df.attrs
    b = baseline.attrs if baseline is not None else None
    c = st.columns(4)

    def delta(key: str, fmt: str) -> str | None:
        return None if b is None else fmt.format(a[key] - b[key])

    c[0].metric("Intra-list diversity", f"{a['intra_list_diversity']:.2f}", delta("intra_list_diversity", "{:+.2f}"),
                help="Share of item pairs from different categories")
    c[1].metric("Category coverage", f"{a['category_coverage']:.0%}", delta("category_coverage", "{:+.0%}"),
                help="Categories shown / categories in the retrieved candidate pool")
    c[2].metric("Categories", a["categories"], delta("categories", "{:+d}"))
    c[3].metric("Mean relevance", f"{a['mean_score']:.3f}", delta("mean_score", "{:+.3f}"),
                help="Mean model score of the listed items (the ranker's score when it serves, else the "
                     "two-tower's cosine)")


def category_mix(df: pd.DataFrame, title: str, key: str) -> None:
    """Bar chart of how many listed items fall in each category."""
    st.plotly_chart(category_mix_figure(df, title), width="stretch", key=key)


def category_mix_figure(df: pd.DataFrame, title: str) -> go.Figure:
    """How many listed items fall in each category (horizontal bars, mean score on hover)."""
    # the diversity metrics count category_id where the code is unknown: so does the chart
    label = df["category"].where(df["category"] != "unknown_category",
                                 "unknown · id …" + df["category_id"].astype(str).str[-6:])
    mix = df.assign(category=label).groupby("category", as_index=False).agg(items=("product_id", "size"),
                                                                            mean_score=("score", "mean"))
    fig = px.bar(plotly_columns(mix.sort_values("items"), "category"), x="items", y="category", orientation="h",
                 title=title,
                 hover_data={"mean_score": ":.3f"},
                 labels={"items": "Recommended items (count)", "category": "Category"})
    return fig.update_layout(height=80 + 28 * len(mix), margin=dict(t=40, b=10))


LIST_COLUMNS = ["rank", "product_id", "reason", "source", "score", "brand", "category", "price", "because_product_id"]


def show_list(df: pd.DataFrame, key: str) -> None:
    """A recommendation list as a table: why each item is listed and which candidate source proposed it. Store
    strings (brands, labels inside reasons) are plain text cells, never Markdown or HTML."""
    st.dataframe(df[[c for c in LIST_COLUMNS if c in df]], hide_index=True, width="stretch", key=key,
                 column_config={"score": st.column_config.NumberColumn(format="%.3f"),
                                "source": st.column_config.TextColumn(),
                                "reason": st.column_config.TextColumn(width="large"),
                                "because_product_id": st.column_config.NumberColumn("because of", format="%d",
                                                                                    help="the product the reason names"),
                                "price": st.column_config.NumberColumn(format="$%.2f")})
