"""Product explorer page (AppTest): search, id, telling products, cold start, bad input."""
from __future__ import annotations

PAGE = "pages/product_explorer.py"


def open_page(app_env):
    at = app_env().run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def test_default_search_opens_a_product_with_both_lists(app_env, demo_artifacts):
    from recsys.defaults import default_query
    from recsys.products.service import ProductService
    svc = ProductService(demo_artifacts)
    top = svc.search(default_query(svc.cards), k=1).iloc[0]  # the default query comes from the store (issue #15)
    at = open_page(app_env)
    heads = [s.value for s in at.subheader]
    assert "Similar products" in heads and "Complementary products" in heads
    # store strings reach Markdown escaped (a brand is text, never markup): drop the escapes to read them
    assert heads[0].replace("\\", "") == f"{top['brand']} · {top['category']} · #{top['product_id']}"
    captions = " ".join(c.value for c in at.caption)
    assert "Co-view substitutes" in captions and "Bought together" in captions
    assert any(s in captions for s in ("two-tower item space", "Feature neighbours"))
    assert len(at.dataframe) >= 2 and {m.label for m in at.metric} >= {"Price", "Views", "Purchases"}


def test_text_search_and_opening_another_result(app_env):
    at = open_page(app_env)
    at.text_input(key="product_query").set_value("kitchen mixer").run()
    assert not at.exception and "mixer" in at.subheader[0].value
    opts = at.selectbox(key="product_open").options
    assert len(opts) > 1
    at.selectbox(key="product_open").set_value(opts[1]).run()
    assert not at.exception and opts[1].split(" · ")[-1] in at.subheader[0].value


def test_product_id_and_bad_ids(app_env, demo_artifacts):
    from recsys.products.service import ProductService
    pid = int(ProductService(demo_artifacts).ids[3])
    at = open_page(app_env)
    at.text_input(key="product_id").set_value(str(pid)).run()
    assert not at.exception and at.subheader[0].value.endswith(f"#{pid}")
    at.text_input(key="product_id").set_value("phone").run()
    assert not at.exception and "is not a product id" in at.warning[0].value
    at.text_input(key="product_id").set_value("1").run()
    assert not at.exception and "unknown product_id 1" in at.warning[0].value.replace("\\", "")


def test_cold_start_product_still_gets_similar_items(app_env):
    at = open_page(app_env)
    cold = [o for o in at.selectbox(key="product_pick").options if o.startswith("cold start")]
    assert cold
    at.selectbox(key="product_pick").set_value(cold[0]).run()
    assert not at.exception
    assert any("No co-view substitutes" in i.value for i in at.info)    # says why one list is empty
    assert len(at.dataframe) >= 1                                         # neighbours from features/embeddings


def test_query_that_matches_nothing_says_so(app_env):
    at = open_page(app_env)
    at.text_input(key="product_query").set_value("xyzzy qwerty").run()
    assert not at.exception and any("No product matches" in i.value for i in at.info)


def test_a_uci_store_shows_the_description_as_text(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys.ingest.stage import build_events
    from recsys.products.stage import build_products_stage
    from tests.conftest import REPO
    from tests.stores import write_named_uci
    build_events(tmp_path, [write_named_uci(tmp_path / "retail.csv")])
    build_products_stage(tmp_path)
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page(PAGE).run()
    at.text_input(key="product_query").set_value("heart t-light").run()
    assert not at.exception
    assert at.subheader[0].value == r"WHITE HANGING HEART T\-LIGHT HOLDER"  # Markdown-escaped store text
    assert any("stock code 85123A" in c.value for c in at.caption)
    assert at.selectbox(key="product_open").options[0].startswith("WHITE HANGING HEART T-LIGHT HOLDER · $2.55")
    assert "name" in at.dataframe[0].value.columns
