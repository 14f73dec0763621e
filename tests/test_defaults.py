"""Defaults from the store itself (recsys.defaults), and the Product explorer opening on a product of the loaded
store: the demo store, the real REES46 head and a UCI wholesale store (names, no brands or categories)."""
from __future__ import annotations

import pandas as pd
import pytest

from recsys.defaults import default_query, example_product_id, example_words
from tests.conftest import REPO


def cards(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["product_id", "name", "brand", "category_code", "views", "purchases"])


COSMETICS = cards([
    (1, "", "runail", "unknown_category", 900, 3),
    (2, "", "irisk", "beauty.nail.polish", 400, 40),       # the best seller
    (3, "", "irisk", "beauty.nail.polish", 300, 10),
    (4, "", "unknown_brand", "beauty.hair.shampoo", 50, 0),
])
WHOLESALE = cards([
    (10, "WHITE HANGING HEART T-LIGHT HOLDER", "unknown_brand", "unknown_category", 0, 35),
    (11, "JUMBO BAG RED RETROSPOT", "unknown_brand", "unknown_category", 0, 50),  # the best seller
    (12, "LUNCH BAG RED RETROSPOT", "unknown_brand", "unknown_category", 0, 30),
    (13, "POSTAGE", "unknown_brand", "unknown_category", 0, 1),
])


def test_the_default_query_is_the_best_sellers_brand_and_category_leaf():
    assert default_query(COSMETICS) == "irisk polish"
    assert example_product_id(COSMETICS) == 2


def test_ties_go_to_more_views_then_the_lower_id():
    df = cards([(7, "", "b", "x.y", 5, 9), (5, "", "acme", "x.z", 5, 9), (6, "", "c", "x.w", 8, 9)])
    assert default_query(df) == "c w" and example_product_id(df) == 6
    assert default_query(df.assign(views=5)) == "acme z"


def test_an_unknown_brand_or_category_is_left_out():
    df = cards([(1, "", "unknown_brand", "appliances.kitchen.mixer", 1, 5), (2, "", "bosch", "unknown_category", 1, 1)])
    assert default_query(df) == "mixer"
    assert default_query(df.assign(purchases=[0, 5])) == "bosch"


def test_a_store_without_brands_or_categories_gets_words_of_the_best_sellers_name():
    assert default_query(WHOLESALE) == "red retrospot"  # its last two words of 3+ letters
    assert example_words(WHOLESALE) == ["retrospot", "jumbo"]  # by purchases; words of 4+ letters


def test_a_product_without_any_words_passes_to_the_next_best_seller_and_empty_gives_nothing():
    df = cards([(1, "", "unknown_brand", "unknown_category", 0, 9), (2, "12 34", "unknown_brand", "unknown_category",
                                                                       0, 8), (3, "", "acme", "unknown_category", 0, 1)])
    assert default_query(df) == "acme"
    assert default_query(df.iloc[:0]) == "" and example_words(df.iloc[:0]) == [] and example_product_id(df.iloc[:0]) is None


def test_example_words_are_the_leaf_and_brand_with_most_events():
    assert example_words(COSMETICS) == ["polish", "runail"]  # runail: 903 events; irisk 750
    assert example_words(COSMETICS, n=1) == ["polish"]


def test_store_strings_stay_words_never_markup():
    df = cards([(1, "", "<b>x</b> [y](javascript:1)", "a.**bold**", 1, 1)])
    q = default_query(df)
    assert q and not set(q) & set("<>[]()*:") and "javascript" in q


# ---- the Product explorer opens on a product of the loaded store -----------------------------------------------

def open_explorer(root, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=90).run()
    at.switch_page("pages/product_explorer.py").run()
    assert not at.exception, at.exception
    return at


def assert_opens_on_a_product(root, monkeypatch):
    from recsys.products.service import ProductService
    svc = ProductService(root)
    query = default_query(svc.cards)
    assert query and not svc.search(query, k=5).empty  # the library: the query finds products
    at = open_explorer(root, monkeypatch)
    assert at.text_input(key="product_query").value == query
    assert not [i.value for i in at.info if "No product matches" in i.value]
    heads = [s.value for s in at.subheader]
    assert "Similar products" in heads  # a product card is open
    top = svc.search(query, k=1).iloc[0]
    assert heads[0].replace("\\", "").endswith(f"#{top['product_id']}") or str(top["product_id"]) in " ".join(
        c.value for c in at.caption)
    return query, at


def test_the_explorer_opens_on_a_product_of_the_demo_store(demo_artifacts, monkeypatch):
    assert_opens_on_a_product(demo_artifacts, monkeypatch)


def test_the_explorer_opens_on_a_product_of_the_real_head(head_artifacts, monkeypatch):
    assert_opens_on_a_product(head_artifacts, monkeypatch)


def test_the_explorer_opens_on_a_product_of_a_uci_store(uci_artifacts, monkeypatch):
    query, at = assert_opens_on_a_product(uci_artifacts, monkeypatch)
    assert "samsung" not in query and "smartphone" not in query
    hints = " ".join(w.help or "" for w in at.text_input) + " ".join(w.placeholder or "" for w in at.text_input)
    assert "headphone" not in hints and "1004767" not in hints


@pytest.mark.parametrize("page", ["pages/product_explorer.py", "ui/product.py", "pages/recommender.py",
                                  "ui/recommender.py"])
def test_no_electronics_words_are_left_in_the_pages_defaults(page):
    text = (REPO / page).read_text()
    for word in ("samsung", "smartphone", "headphones", "kitchen mixer", "bosch", "1004767", "512345678"):
        assert word not in text, (page, word)
