"""Text search: tokenising, BM25, the query tower, the build-time comparison, and queries on the demo store."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.ranking import top_positions
from recsys.products.search import (SearchIndex, TowerConfig, Vocabulary, bm25_matrix, build_search, encode_query,
                           product_fields, text_variant, tokenize, train_query_tower)


def cards(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["product_id", "category_code", "brand", "price_band", "views", "carts",
                                     "purchases"])
    df["category_key"] = df["category_code"]
    return df


TINY = cards([
    (1, "electronics.smartphone", "samsung", "mid-range", 50, 5, 2),
    (2, "electronics.smartphone", "apple", "premium", 80, 9, 3),
    (3, "electronics.audio.headphone", "sony", "budget", 30, 2, 1),
    (4, "electronics.audio.headphone", "apple", "premium", 20, 1, 0),
    (5, "appliances.kitchen.mixer", "bosch", "mid-range", 10, 1, 1),
    (6, "appliances.kitchen.kettle", "bosch", "budget", 5, 0, 0),
    (7, "unknown_category", "unknown_brand", "unpriced", 1, 0, 0),
])


def test_tokenize_stems_plurals_and_drops_stop_words():
    assert tokenize("Cheap HEADPHONES for the kids!") == ["cheap", "headphone", "kid"]
    assert tokenize("glass") == ["glass"]  # double s is not a plural


def test_fields_use_category_brand_price_words_and_synonyms():
    f = product_fields(TINY)
    assert f[0]["category"] == ["electronic", "smartphone"] and "phone" in f[0]["synonyms"]
    assert f[0]["brand"] == ["samsung"] and f[2]["price"][0] == "cheap"
    assert f[6] == {"category": [], "synonyms": [], "brand": [], "name": [], "price": []}  # unknowns add no words


NAMED = cards([(i, "unknown_category", "unknown_brand", "mid-range", v, 0, p) for i, v, p in
               [(1, 0, 9), (2, 0, 3), (3, 0, 5), (4, 0, 1)]]).assign(
    name=["WHITE HANGING HEART T-LIGHT HOLDER", "GLASS STAR FROSTED T-LIGHT HOLDER", "CREAM CUPID HEARTS COAT HANGER",
          ""])


def test_names_are_words_of_the_product():
    f = product_fields(NAMED)
    assert f[0]["name"] == ["white", "hanging", "heart", "t", "light", "holder"]
    assert f[2]["name"][2] == "heart" and f[3]["name"] == []   # plurals stemmed; no name, no words
    variants = [text_variant(f[1], np.random.default_rng(i)) for i in range(20)]
    assert all(set(v) & set(f[1]["name"]) for v in variants)    # a store without categories is searched by name


def test_bm25_ranks_the_product_whose_name_has_every_query_word_first(tmp_path):
    build_search(NAMED, tmp_path, seed=5, eval_items=4)
    idx = SearchIndex.load(tmp_path, NAMED)
    pos, _ = idx.search("heart t-light", 4, "bm25")
    assert NAMED["product_id"].iat[pos[0]] == 1 and set(NAMED["product_id"].iloc[pos]) == {1, 2, 3}
    pos, _ = idx.search("frosted holders", 4, "bm25")
    assert NAMED["product_id"].iat[pos[0]] == 2


def test_vocabulary_corrects_misspellings():
    v = Vocabulary(["samsung", "smartphone", "mixer"])
    assert v.ids(["samsng", "smartphone", "zzzz"]) == [0, 1]


def test_bm25_known_answer():
    w = bm25_matrix([[0, 1], [0], [2]], 3).toarray()
    assert w[0, 1] > 0 and w[1, 1] == 0 and w[2, 2] > 0
    # word 0 is in two of three documents: lower idf than the rarer word 1 in a document of the same length
    assert w[0, 1] > w[0, 0]
    assert w[1, 0] > w[0, 0]  # the shorter document scores the shared word higher


def test_top_k_handles_small_and_infinite_scores():
    s = np.array([0.1, np.inf * -1, 0.5, 0.5])
    assert top_positions(s, 10).tolist() == [2, 3, 0]


def test_text_variants_are_seeded():
    f = product_fields(TINY)[0]
    a = [text_variant(f, np.random.default_rng(3)) for _ in range(3)]
    b = [text_variant(f, np.random.default_rng(3)) for _ in range(3)]
    assert a == b and all(a)


def test_query_tower_learns_a_planted_mapping():
    # 8 items with distinct one-word descriptions; queries are the same word: the tower must map each to its item
    docs = [[i] for i in range(8)]
    variants = [[[i]] for i in range(8)]
    cfg = TowerConfig(n_words=8, dim=16, out_dim=16, steps=300, batch=8, lr=0.05)
    weights, items = train_query_tower(docs, variants, cfg, None, seed=1)
    hits = [int(np.argmax(items @ encode_query(weights, [i])) == i) for i in range(8)]
    assert sum(hits) == 8


def test_query_tower_against_frozen_item_embeddings():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 8)).astype(np.float32)
    docs = [[i] for i in range(6)]
    cfg = TowerConfig(n_words=6, dim=16, out_dim=8, steps=300, batch=6, lr=0.05, item_text_tower=False)
    weights, items = train_query_tower(docs, [[[i]] for i in range(6)], cfg, emb, seed=1)
    assert np.allclose(np.linalg.norm(items, axis=1), 1.0, atol=1e-5)
    assert sum(int(np.argmax(items @ encode_query(weights, [i])) == i) for i in range(6)) == 6


def test_build_search_compares_both_methods_and_reloads(tmp_path):
    report = build_search(TINY, tmp_path, seed=5, eval_items=7)
    assert set(report["metrics"]) == {"bm25", "tower"} and report["default"] in ("bm25", "tower")
    for m in report["metrics"].values():
        assert 0 <= m["hit_rate@10"] <= 1 and 0 <= m["mrr"] <= 1
    idx = SearchIndex.load(tmp_path, TINY)
    pos, _ = idx.search("kitchen mixer", 3, "bm25")
    assert TINY["product_id"].iat[pos[0]] == 5
    pos, _ = idx.search("cheap headphones", 2, "bm25")
    assert TINY["product_id"].iat[pos[0]] == 3
    assert len(idx.search("xyzzy qwerty", 5)[0]) == 0          # nothing known: no results, not noise
    again = tmp_path / "again"
    build_search(TINY, again, seed=5, eval_items=7)
    assert (again / "item_vectors.npy").read_bytes() == (tmp_path / "item_vectors.npy").read_bytes()


@pytest.mark.parametrize("query,category,brand,band", [
    ("samsung smartphone", "electronics.smartphone", "samsung", None),
    ("cheap headphones", "electronics.audio.headphone", None, "budget"),
    ("kitchen mixer", "appliances.kitchen.mixer", None, None),
])
def test_demo_store_queries_are_sensible(demo_artifacts, query, category, brand, band):
    from recsys.products.service import ProductService
    svc = ProductService(demo_artifacts)
    c = svc.cards
    match = (c["category_code"] == category) & (c["brand"] == brand if brand else True) & \
        (c["price_band"] == band if band else True)
    in_cat = int((c["category_code"] == category).sum())
    # BM25: every product matching all the query's aspects ranks ahead of the rest, best sellers first
    res = svc.search(query, 10, "bm25")
    m = min(10, int(match.sum()))
    assert m > 0 and set(res["product_id"][:m]) <= set(c.loc[match, "product_id"])
    assert res["score"].is_monotonic_decreasing
    # the query tower: at least the category is right for most of the top results
    res = svc.search(query, 10, "tower")
    top = min(10, in_cat)
    assert (res["category"][:top] == category).mean() >= 0.8


def test_demo_store_report_names_the_better_method(demo_artifacts):
    from recsys.products.service import ProductService
    rep = ProductService(demo_artifacts).search_index.report
    m = rep["metrics"]
    best = max(m, key=lambda k: (m[k]["hit_rate@10"], m[k]["mrr"]))
    assert rep["default"] == best and m[best]["hit_rate@10"] > 0.2
