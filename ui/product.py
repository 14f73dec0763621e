"""App-side helpers of the Product explorer: the products stage loaded once, and the product picker."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ui.common import md
from recsys.products.service import ProductService


@st.cache_resource(show_spinner="Loading product tables...")
def product_service(root_dir: str, ver: str) -> ProductService:
    """The products stage (cards, neighbours, complements, search index), read once per build."""
    return ProductService(root_dir)


def label(row: pd.Series | dict) -> str:
    """A readable product label (plain text, for a selectbox): name or brand and category leaf, price and id."""
    if row.get("name"):
        return f"{row['name']} · ${row['price']:,.2f} · #{row['product_id']}"
    cat = str(row["category"]).split(".")[-1] if row["category"] != "unknown_category" else "no category"
    return f"{row['brand']} · {cat} · ${row['price']:,.2f} · #{row['product_id']}"


def card_heading(card: dict) -> tuple[str, str | None]:
    """The card's title and caption as escaped Markdown: the name and its stock code when the store has names,
    else brand · category · id as before."""
    if not card.get("name"):
        return f"{md(card['brand'])} · {md(card['category_code'])} · #{card['product_id']}", None
    known = [v for v, unknown in ((card["brand"], "unknown_brand"), (card["category_code"], "unknown_category"))
             if v != unknown]
    caption = " · ".join([f"stock code {card['stock_code']}"] * bool(card.get("stock_code")) + known
                         + [f"product id {card['product_id']}"])
    return md(card["name"]), md(caption)


def without_empty_names(df: pd.DataFrame) -> pd.DataFrame:
    """A product list without its ``name`` column when no product in it has one (stores without names)."""
    return df.drop(columns=["name"]) if "name" in df and not df["name"].astype(bool).any() else df


@st.cache_data(show_spinner=False)
def store_defaults(root_dir: str, ver: str) -> dict:
    """The search box's default query, example words and an example id, from this store's own catalog."""
    from recsys.defaults import default_query, example_product_id, example_words
    cards = product_service(root_dir, ver).cards
    return {"query": default_query(cards), "words": example_words(cards) or ["a brand", "a category"],
            "id": example_product_id(cards)}


def pick_product(svc: ProductService, defaults: dict) -> int | None:
    """Search box, id box and quick picks; returns the chosen product id (None when nothing is chosen).
    ``defaults`` (:func:`store_defaults`) come from the store, so the page opens on products it has."""
    words = [md(w) for w in defaults["words"]]
    left, mid, right = st.columns([3, 2, 2])
    query = left.text_input("Search products", value=defaults["query"], key="product_query",
                            help=f"Words from names, categories, brands and price levels, e.g. 'cheap {words[0]}'")
    typed = mid.text_input("…or a product id", key="product_id",
                           placeholder=f"e.g. {defaults['id']}" if defaults["id"] is not None else "")
    examples = svc.example_products()
    pick = right.selectbox("…or a telling product", ["—"] + list(examples), key="product_pick")
    if typed.strip():
        if not typed.strip().isdigit():
            st.warning(f"'{md(typed)}' is not a product id: ids are whole numbers such as {int(svc.ids[0])}.")
            return None
        return int(typed.strip())
    if pick != "—":
        return examples[pick]
    if not query.strip():
        st.info(f"Type a few words (e.g. '{words[0]}'), a product id, or choose a telling product.")
        return None
    results = svc.search(query, k=20)
    if results.empty:
        hint = " or ".join(f"'{w}'" for w in words)
        st.info(f"No product matches '{md(query)}'. Try words of this store such as {hint}.")
        return None
    st.caption(f"Search results for “{md(query)}” ({svc.search_index.default} ranking; best first)")
    st.dataframe(without_empty_names(results.drop(columns=["source"])), hide_index=True, width="stretch", height=220,
                 key="search_results")
    options = {label(r): int(r["product_id"]) for _, r in results.iterrows()}
    return options[st.selectbox("Open a product", list(options), key="product_open")]


def show_list(df: pd.DataFrame, source: str, empty: str, key: str) -> None:
    """One product list with the caption that says where it comes from."""
    st.caption(source)
    if df is None or df.empty:
        st.info(empty)
        return
    st.dataframe(without_empty_names(df.drop(columns=[c for c in ("source",) if c in df])), hide_index=True,
                 width="stretch", key=key)
