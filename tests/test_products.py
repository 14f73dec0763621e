"""Products stage: substitutes, complements and category complements on a tiny store with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.ingest.stage import build_events
from recsys.products.service import ProductNotFound, ProductService
from recsys.products.stage import build_products_stage

PHONE, CASE, AUDIO, KETTLE = ("electronics.smartphone", "electronics.phone.case", "electronics.audio.headphone",
                              "appliances.kitchen.kettle")
# product: (category_id, category_code, brand, price)
PRODUCTS = {1: (11, PHONE, "samsung", 300.0), 2: (11, PHONE, "apple", 900.0), 3: (12, CASE, "spigen", 10.0),
            4: (13, AUDIO, "sony", 50.0), 5: (14, KETTLE, "bosch", 25.0), 6: (11, PHONE, "samsung", 320.0)}
# (day, minute, event, product, user, session)
EVENTS = [
    (0, 0, "view", 1, 101, "s1"), (0, 1, "view", 2, 101, "s1"), (0, 2, "purchase", 1, 101, "s1"),
    (1, 0, "purchase", 3, 101, "s5"),                                   # u101: 1 then 3 a day later
    (0, 0, "view", 1, 102, "s2"), (0, 1, "view", 2, 102, "s2"), (0, 2, "purchase", 1, 102, "s2"),
    (0, 3, "purchase", 3, 102, "s2"),                                   # u102: 1 and 3 in one session
    (0, 0, "view", 1, 103, "s3"), (0, 1, "view", 2, 103, "s3"), (0, 2, "purchase", 1, 103, "s3"),
    (0, 3, "purchase", 2, 103, "s3"),                                   # both bought: not a co-view substitute
    (0, 0, "view", 1, 104, "s4"), (0, 1, "view", 4, 104, "s4"),        # one shared session only: below support
    (0, 0, "purchase", 1, 105, "s6"), (10, 0, "purchase", 3, 105, "s7"),  # ten days apart: not together
    (0, 0, "view", 5, 106, "s8"), (0, 1, "purchase", 5, 106, "s8"), (0, 0, "view", 6, 107, "s9"),
]


def write_store(path) -> None:
    lines = ["event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"]
    for day, minute, ev, pid, user, sess in EVENTS:
        cid, code, brand, price = PRODUCTS[pid]
        lines.append(f"2019-10-{1 + day:02d} 10:{minute:02d}:00 UTC,{ev},{pid},{cid},{code},{brand},{price},{user},{sess}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-products")
    write_store(root / "tiny.csv")
    build_events(root, [root / "tiny.csv"])
    build_products_stage(root)
    return root


@pytest.fixture(scope="module")
def svc(tiny) -> ProductService:
    return ProductService(tiny)


def test_card_has_funnel_and_price_band(svc):
    card = svc.card(1)
    assert (card["brand"], card["category_code"], card["price"]) == ("samsung", PHONE, 300.0)
    assert (card["name"], card["stock_code"]) == ("", "")     # a REES46 store has no names
    assert (card["views"], card["purchases"], card["buyers"]) == (4, 4, 4)
    assert card["purchase_rate"] == pytest.approx(1.0) and card["revenue"] == pytest.approx(1200.0)
    bands = {p: svc.card(p)["price_band"] for p in (1, 6, 2)}
    assert bands == {1: "budget", 6: "mid-range", 2: "premium"}  # terciles within the smartphone category


def test_coview_substitutes_skip_sessions_where_both_were_bought(svc):
    subs = svc.substitutes(1)
    assert subs["product_id"].tolist() == [2]            # s1 and s2 count; s3 (both bought) does not
    assert subs["co_sessions"].tolist() == [2]
    assert subs["source"].eq("co-view").all()
    assert svc.substitutes(4).empty                       # one shared session is below the minimum support


def test_complements_by_lift_with_minimum_support(svc):
    comp = svc.complements(1)
    direct = comp[comp["source"] == "co-purchase"]
    assert direct["product_id"].tolist() == [3]           # u101 (next day) and u102 (same session); u105 is 10 days apart
    row = svc.comps.query("product_id == 1").iloc[0]
    assert row["co_buyers"] == 2
    # 5 buyers in all, 4 bought product 1, 3 bought product 3
    assert row["lift"] == pytest.approx(2 * 5 / (4 * 3)) and row["confidence"] == pytest.approx(0.5)
    assert row["support"] == pytest.approx(0.4)
    assert 2 not in set(direct["product_id"])               # bought together by one user only


def test_category_complements_fill_in_for_products_without_direct_ones(svc):
    cats = svc.cats.set_index(["category", "other_category"])
    assert cats.loc[(PHONE, CASE), "co_purchases"] == 2 and cats.loc[(PHONE, CASE), "best_product_id"] == 3
    comp = svc.complements(2)                              # product 2 has no direct complement
    assert comp["product_id"].tolist() == [3] and comp["source"].tolist() == ["category complement"]
    assert svc.complements(5).empty


def test_feature_neighbours_for_a_cold_product(svc):
    sim = svc.similar(6)
    assert sim["co_view"].empty                             # never co-viewed
    nb = sim["neighbours"]
    assert nb["source"].eq("features").all()
    assert nb["product_id"].tolist()[:2] == [1, 2]          # same brand and close price first
    assert "cold start" in " ".join(svc.example_products())


def test_unknown_product_is_a_clear_error(svc):
    with pytest.raises(ProductNotFound, match="unknown product_id 999"):
        svc.card(999)
    with pytest.raises(KeyError):
        svc.complements(999)


def test_embedding_neighbours_from_the_model_stage(tiny, tmp_path):
    import shutil
    root = tmp_path / "with-model"
    shutil.copytree(tiny, root)
    (root / "model").mkdir()
    emb = np.eye(6, dtype=np.float32)
    emb[5] = emb[0] + 0.1                                   # product 6 sits next to product 1
    np.save(root / "model" / "item_embeddings.npy", emb)
    (root / "model" / "manifest.json").write_text(json.dumps({"stage": "model", "input_fingerprint": "x"}))
    manifest, built = build_products_stage(root)
    assert built                                            # the model stage changes the fingerprint
    svc = ProductService(root)
    nb = svc.similar(6)["neighbours"]
    assert nb["source"].eq("embedding").all() and nb["product_id"].iat[0] == 1


def test_stage_is_skipped_when_up_to_date_and_deterministic(tiny):
    manifest, built = build_products_stage(tiny)
    assert not built
    before = (tiny / "products" / "search" / "item_vectors.npy").read_bytes()
    build_products_stage(tiny, force=True)
    assert (tiny / "products" / "search" / "item_vectors.npy").read_bytes() == before


def test_demo_store_products(demo_artifacts):
    svc = ProductService(demo_artifacts)
    m = svc.manifest
    assert m["rows"]["products"] == len(svc.cards) > 100 and m["rows"]["substitutes"] > 0
    phones = svc.cards.query("category_code == 'electronics.smartphone'").sort_values("purchases")
    comp = svc.complements(int(phones["product_id"].iat[-1]))
    assert len(comp) >= 1                                   # the demo store plants phone -> accessories
    for pid in svc.cards["product_id"].sample(20, random_state=0):
        assert len(svc.similar(int(pid))["neighbours"]) > 0  # every product gets feature/embedding neighbours


def test_category_complements_come_from_the_rules_stage_when_built(tiny, tmp_path):
    import shutil
    from recsys.rules.stage import build_rules_stage
    root = tmp_path / "with-rules"
    shutil.copytree(tiny, root)
    build_rules_stage(root)
    manifest, built = build_products_stage(root)
    assert built and manifest["category_complements_source"] == "rules stage"
    cats = ProductService(root).cats.set_index(["category", "other_category"])
    assert cats.loc[(PHONE, CASE), "co_purchases"] == 1    # rules baskets are sessions: only s2 holds both
    assert cats.loc[(PHONE, CASE), "best_product_id"] == 3


@pytest.fixture(scope="module")
def uci(tmp_path_factory):
    """Events and products of a small UCI log with real descriptions."""
    from tests.stores import write_named_uci
    root = tmp_path_factory.mktemp("uci-names")
    build_events(root, [write_named_uci(root / "retail.csv")])
    build_products_stage(root)
    return root


def test_uci_cards_and_lists_carry_the_description(uci):
    from recsys.ingest.uci import stock_code_id
    svc = ProductService(uci)
    heart, lantern = stock_code_id("85123A"), stock_code_id("71053")
    card = svc.card(heart)
    assert (card["name"], card["stock_code"]) == ("WHITE HANGING HEART T-LIGHT HOLDER", "85123A")
    comp = svc.complements(heart)
    assert comp.set_index("product_id").loc[lantern, "name"] == "WHITE METAL LANTERN"
    shown, pid = next(iter(svc.example_products().items()))
    best = svc.card(pid)
    assert best["name"] and shown == f"best seller: {best['name']} #{best['stock_code']}"


@pytest.mark.parametrize("query,code", [("heart t-light", "85123A"), ("hand warmer union jack", "22633"),
                                        ("lantern", "71053"), ("glass star holder", "21730")])
def test_bm25_finds_a_product_by_words_of_its_description(uci, query, code):
    from recsys.ingest.uci import stock_code_id
    res = ProductService(uci).search(query, 5, "bm25")
    assert res["product_id"].iat[0] == stock_code_id(code)


def test_a_damaged_names_file_does_not_break_the_products_stage(uci, tmp_path, caplog):
    import shutil
    root = tmp_path / "damaged"
    shutil.copytree(uci, root)
    (root / "events" / "item_names.parquet").write_bytes(b"garbage")
    with caplog.at_level("WARNING", logger="recsys.ingest.adapters"):
        manifest, built = build_products_stage(root, force=True)
    assert built and "labels fall back" in caplog.text
    svc = ProductService(root)
    assert svc.cards["name"].eq("").all() and len(svc.complements(int(svc.ids[0]))) >= 0
