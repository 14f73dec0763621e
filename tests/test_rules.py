"""Association rules: textbook known answers, Apriori == FP-growth, support over all baskets, guards, baskets,
category complements, the build stage, and escaping in the network HTML."""
from __future__ import annotations

import itertools
import math
import re
import zlib

import duckdb
import numpy as np
import pandas as pd
import pytest

from recsys.rules.network import clean_text, network_html, rules_graph, text_tooltip
from recsys.rules.complements import category_complements_con
from recsys.rules.mining import item_rules, mine_rules_con, neighbours
from recsys.rules.params import RuleParams
from recsys.rules.stage import build_rules_stage, load_rules

XSS = "<img src=x onerror=alert(1)>"
# The 5-basket grocery set of the mlxtend user guide (Raschka), the textbook case.
TEXTBOOK = [["Milk", "Onion", "Nutmeg", "Kidney Beans", "Eggs", "Yogurt"],
            ["Dill", "Onion", "Nutmeg", "Kidney Beans", "Eggs", "Yogurt"],
            ["Milk", "Apple", "Kidney Beans", "Eggs"],
            ["Milk", "Unicorn", "Corn", "Kidney Beans", "Yogurt"],
            ["Corn", "Onion", "Onion", "Kidney Beans", "Ice cream", "Eggs"]]


def events_from_baskets(baskets: list[list[str]], event_type: str = "purchase", category: dict | None = None,
                        users: list[int] | None = None, days: list[int] | None = None) -> pd.DataFrame:
    """A contract-shaped events frame: one session per basket, the item name as the brand (and product)."""
    pid = {n: product_id(n) for b in baskets for n in b}
    rows = []
    for s, basket in enumerate(baskets):
        for j, item in enumerate(basket):
            t = pd.Timestamp("2019-10-01", tz="UTC") + pd.Timedelta(days=(days or [0] * len(baskets))[s],
                                                                    minutes=s * 3 + j)
            code = (category or {}).get(item, "unknown_category")
            rows.append((t, event_type, pid[item], 2053013555631882655 + pid[item], code, item, 10.0 + pid[item] % 7,
                         (users or list(range(len(baskets))))[s], f"s{s}"))
    cols = ["event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id",
            "user_session"]
    return pd.DataFrame(rows, columns=cols)


def product_id(name: str) -> int:
    """A stable product id per item name (the same across frames)."""
    return 1000 + zlib.crc32(name.encode()) % 1_000_000


def con_over(df: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events_df", df)
    con.execute("CREATE VIEW events AS SELECT * FROM events_df")
    return con


def brute_force_rules(baskets: list[list[str]], min_support: float, min_conf: float, max_len: int) -> dict:
    """Every rule by enumeration: {(antecedent, consequent): (support, confidence, lift)} over ALL baskets."""
    sets = [frozenset(b) for b in baskets]
    n = len(sets)
    sup = lambda x: sum(x <= b for b in sets) / n  # noqa: E731
    items = sorted(set().union(*sets))
    out = {}
    for k in range(2, max_len + 1):
        for combo in itertools.combinations(items, k):
            s = sup(frozenset(combo))
            if s < min_support - 1e-12:
                continue
            for r in range(1, k):
                for ante in itertools.combinations(combo, r):
                    a, c = frozenset(ante), frozenset(combo) - frozenset(ante)
                    conf = s / sup(a)
                    if conf >= min_conf - 1e-12:
                        out[(a, c)] = (s, conf, conf / sup(c))
    return out


def as_dict(rules: pd.DataFrame) -> dict:
    return {(frozenset(r.antecedent_items), frozenset(r.consequent_items)): (r.support, r.confidence, r.lift)
            for r in rules.itertuples()}


TEXTBOOK_PARAMS = RuleParams(scope="purchases", granularity="brand", min_support=0.6, min_confidence=0.7,
                             min_lift=0.0, max_len=3, min_baskets=1)


@pytest.mark.parametrize("algorithm", ["apriori", "fpgrowth"])
def test_textbook_known_answers(algorithm):
    res = mine_rules_con(con_over(events_from_baskets(TEXTBOOK)), TEXTBOOK_PARAMS.__class__(
        **{**TEXTBOOK_PARAMS.__dict__, "algorithm": algorithm}))
    r = {(" + ".join(a.antecedent_items), " + ".join(a.consequent_items)): a for a in res.rules.itertuples()}
    onion_eggs = r[("Onion", "Eggs")]
    assert onion_eggs.support == pytest.approx(0.6) and onion_eggs.confidence == pytest.approx(1.0)
    assert onion_eggs.lift == pytest.approx(1.25) and onion_eggs.leverage == pytest.approx(0.12)
    assert math.isinf(onion_eggs.conviction) and onion_eggs.baskets == 3
    eggs_onion = r[("Eggs", "Onion")]
    assert eggs_onion.confidence == pytest.approx(0.75) and eggs_onion.lift == pytest.approx(1.25)
    assert eggs_onion.conviction == pytest.approx(1.6)  # (1 - 0.6) / (1 - 0.75)
    kb_eggs = r[("Kidney Beans", "Eggs")]
    assert kb_eggs.support == pytest.approx(0.8) and kb_eggs.confidence == pytest.approx(0.8)
    assert kb_eggs.lift == pytest.approx(1.0) and kb_eggs.leverage == pytest.approx(0.0)
    triple = r[("Eggs + Onion", "Kidney Beans")]
    assert triple.support == pytest.approx(0.6) and triple.confidence == pytest.approx(1.0)
    assert as_dict(res.rules).keys() == brute_force_rules(TEXTBOOK, 0.6, 0.7, 3).keys()
    assert res.stats["baskets"] == 5 and res.stats["frequent_items"] == 5  # KB, Eggs, Milk, Onion, Yogurt


def test_support_counts_all_baskets_including_single_item_ones():
    baskets = TEXTBOOK + [["Milk"]] * 3 + [["Apple"]] * 2 + [["Eggs", "Milk"]]
    params = RuleParams(scope="purchases", granularity="brand", min_support=0.25, min_confidence=0.3,
                        min_lift=0.0, max_len=3, min_baskets=1)
    res = mine_rules_con(con_over(events_from_baskets(baskets)), params)
    expected = brute_force_rules(baskets, 0.25, 0.3, 3)
    got = as_dict(res.rules)
    assert got.keys() == expected.keys() and len(got) > 0
    for key, (s, c, lift) in expected.items():
        assert got[key] == pytest.approx((s, c, lift))
    assert res.stats["baskets"] == len(baskets)
    milk = res.items.set_index("item").loc["Milk"]
    assert milk["support"] == pytest.approx(7 / 11)  # single-item baskets count in the denominator and numerator


def random_baskets(seed: int, n: int = 400, n_items: int = 25) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    pop = rng.dirichlet(np.full(n_items, 0.4))
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 7))
        b = set(rng.choice(n_items, size=k, p=pop))
        if 0 in b and rng.random() < 0.7:
            b.add(1)  # a planted complement pair
        out.append([f"item{i:02d}" for i in sorted(b)])
    return out


@pytest.mark.parametrize("seed,support,conf,lift,max_len", [(1, 0.02, 0.1, 0.0, 2), (2, 0.01, 0.2, 1.0, 3),
                                                             (3, 0.005, 0.0, 1.2, 4), (4, 0.05, 0.5, 0.0, 3)])
def test_apriori_and_fpgrowth_give_identical_rules(seed, support, conf, lift, max_len):
    con = con_over(events_from_baskets(random_baskets(seed)))
    base = dict(scope="purchases", granularity="brand", min_support=support, min_confidence=conf, min_lift=lift,
                max_len=max_len, min_baskets=1)
    a = mine_rules_con(con, RuleParams(**base, algorithm="apriori")).rules
    f = mine_rules_con(con, RuleParams(**base, algorithm="fpgrowth")).rules
    assert len(a) > 0
    pd.testing.assert_frame_equal(a.drop(columns=["antecedent_items", "consequent_items"]),
                                  f.drop(columns=["antecedent_items", "consequent_items"]))
    assert as_dict(a).keys() == {k for k, v in brute_force_rules(random_baskets(seed), support, conf, max_len)
                                 .items() if v[2] >= lift - 1e-12}


def test_guards_stop_early_and_suggest_a_higher_support():
    big = [[f"item{i:02d}" for i in range(22)]] * 30 + [["item00"]] * 10
    con = con_over(events_from_baskets(big))
    base = dict(scope="purchases", granularity="brand", min_support=0.01, min_baskets=1, max_len=5)
    with pytest.raises(ValueError, match=r"frequent itemsets .* raise min support to at least [0-9.e-]+ "):
        mine_rules_con(con, RuleParams(**base, max_itemsets=1_000))
    with pytest.raises(ValueError, match=r"Mining would take about .* raise min support"):
        mine_rules_con(con, RuleParams(**base, max_seconds=1e-6))
    with pytest.raises(ValueError, match=r"would need about .* MB .* raise min support"):
        mine_rules_con(con, RuleParams(**base, max_memory_mb=0))
    with pytest.raises(ValueError, match="scope='everything' is not one of"):
        mine_rules_con(con, RuleParams(scope="everything"))
    res = mine_rules_con(con, RuleParams(**{**base, "max_len": 2}, min_lift=0.0))  # a sane setting works
    assert len(res.rules) == 22 * 21


def test_auto_support_is_the_kth_pair_support():
    # pair (a, b) in 6 baskets, (c, d) in 4, (e, f) in 2; 20 baskets in all
    baskets = [["a", "b"]] * 6 + [["c", "d"]] * 4 + [["e", "f"]] * 2 + [["g"]] * 8
    con = con_over(events_from_baskets(baskets))
    base = dict(scope="purchases", granularity="brand", min_confidence=0.0, min_lift=0.0, min_baskets=1)
    two = mine_rules_con(con, RuleParams(**base, target_pairs=2))
    assert two.stats["auto_support"] and two.stats["params"]["min_support"] == pytest.approx(4 / 20)
    assert {r[0] for r in two.rules["antecedent_items"]} == {"a", "b", "c", "d"}
    floor = mine_rules_con(con, RuleParams(**{**base, "min_baskets": 3}, target_pairs=3))
    assert floor.stats["params"]["min_support"] == pytest.approx(3 / 20)  # never below min_baskets


def test_auto_support_is_raised_until_mining_fits_the_guards():
    # the 100th pair's support would give ~616 itemsets: auto raises it to the guard's suggestion and mines
    con = con_over(events_from_baskets(random_baskets(5, n=400)))
    base = dict(scope="purchases", granularity="brand", min_confidence=0.0, min_lift=0.0, min_baskets=1)
    free = mine_rules_con(con, RuleParams(**base))
    assert free.stats["params"]["min_support"] == pytest.approx(0.0075) and "auto_support_raised" not in free.stats
    capped = mine_rules_con(con, RuleParams(**base, max_itemsets=40))
    raised = capped.stats["auto_support_raised"]
    assert [r["support"] for r in raised] == [pytest.approx(0.0075)] and "frequent itemsets" in raised[0]["why"]
    assert capped.stats["params"]["min_support"] > 0.0075 and capped.stats["itemsets"] <= 40
    assert 0 < len(capped.rules) < len(free.rules)
    # an explicit support is the user's choice: refused with the suggestion, never changed
    with pytest.raises(ValueError, match="raise min support"):
        mine_rules_con(con, RuleParams(**base, min_support=0.0075, max_itemsets=40))


def test_baskets_per_session_versus_per_user_and_day():
    # user 1: two sessions on day 0 (A, then B) and one on day 1 (A B); user 2: one session (A)
    baskets = [["A"], ["B"], ["A", "B"], ["A"]]
    df = events_from_baskets(baskets, users=[1, 1, 1, 2], days=[0, 0, 1, 0])
    params = dict(scope="purchases", granularity="brand", min_support=0.1, min_confidence=0.0, min_lift=0.0,
                  min_baskets=1)
    per_session = mine_rules_con(con_over(df), RuleParams(**params, basket="session"))
    per_day = mine_rules_con(con_over(df), RuleParams(**params, basket="user_day"))
    assert per_session.stats["baskets"] == 4 and per_day.stats["baskets"] == 3
    s = per_session.rules.set_index("antecedent").loc["A"]
    d = per_day.rules.set_index("antecedent").loc["A"]
    assert s["baskets"] == 1 and s["support"] == pytest.approx(1 / 4) and s["confidence"] == pytest.approx(1 / 3)
    assert d["baskets"] == 2 and d["support"] == pytest.approx(2 / 3) and d["confidence"] == pytest.approx(2 / 3)


def test_scopes_and_granularities_pick_the_right_events():
    cats = {"phone": "electronics.smartphone", "case": "electronics.accessories.case", "pan": "kitchen.pan"}
    bought = events_from_baskets([["phone", "case"], ["phone", "case"], ["pan"], ["phone"]], category=cats)
    viewed = events_from_baskets([["phone", "pan"]] * 3, event_type="view", category=cats)
    viewed["user_session"] = "v" + viewed["user_session"]
    con = con_over(pd.concat([bought, viewed], ignore_index=True))
    base = dict(min_support=0.1, min_confidence=0.0, min_lift=0.0, min_baskets=1)
    pur = mine_rules_con(con, RuleParams(**base, scope="purchases", granularity="product"))
    assert {tuple(r) for r in pur.rules[["antecedent_items", "consequent_items"]].map(tuple).values} == \
        {((str(product_id("phone")),), (str(product_id("case")),)),
         ((str(product_id("case")),), (str(product_id("phone")),))}
    assert pur.rules["antecedent"].str.contains(r"phone · smartphone · #\d+ · \$", regex=True).any()
    views = mine_rules_con(con, RuleParams(**base, scope="views", granularity="category"))
    assert set(views.rules["antecedent"]) == {"electronics.smartphone", "kitchen.pan"}
    top = mine_rules_con(con, RuleParams(**base, scope="purchases", granularity="top_category"))
    assert top.stats["baskets"] == 4 and top.rules.empty  # phone + case are both electronics
    assert set(top.items["item"]) == {"electronics", "kitchen"}


def test_category_complements_on_a_tiny_store():
    cats = {"phone": "electronics.smartphone", "case": "electronics.accessories.case", "pan": "kitchen.pan",
            "lid": "kitchen.lid", "tv": "electronics.video.tv"}
    baskets = [["phone", "case"], ["phone", "case"], ["phone", "case", "pan"], ["pan", "lid"], ["phone"],
               ["tv", "phone"], ["tv"]]
    cc = category_complements_con(con_over(events_from_baskets(baskets, category=cats)))
    phone = cc[cc["category"] == "electronics.smartphone"].set_index("other_category")
    assert list(phone.index) == ["electronics.accessories.case", "electronics.video.tv", "kitchen.pan"]  # top 3
    case = phone.loc["electronics.accessories.case"]
    assert case["baskets"] == 3 and case["rank"] == 1 and case["category_baskets"] == 5
    assert case["confidence"] == pytest.approx(3 / 5) and case["lift"] == pytest.approx(3 * 7 / (5 * 3))
    pan = cc[cc["category"] == "kitchen.pan"].set_index("other_category")
    assert pan.loc["kitchen.lid", "lift"] == pytest.approx(1 * 7 / (2 * 1))
    assert (cc.groupby("category").size() <= 3).all()


def test_item_rules_and_neighbours():
    res = mine_rules_con(con_over(events_from_baskets(TEXTBOOK)), TEXTBOOK_PARAMS)
    mine = item_rules(res.rules, "Onion")
    assert len(mine) > 0 and all("Onion" in a + c for a, c in zip(mine["antecedent_items"], mine["consequent_items"]))
    nb = neighbours(res.rules, res.items, "Onion")
    assert set(nb["item"]) == {"Eggs", "Kidney Beans"} and "Onion" not in set(nb["item"])


def test_xss_brand_is_escaped_in_the_network_html():
    baskets = [[XSS, "safe & sound"]] * 4 + [[XSS]]
    res = mine_rules_con(con_over(events_from_baskets(baskets)), RuleParams(
        scope="purchases", granularity="product", min_support=0.1, min_confidence=0.0, min_lift=0.0, min_baskets=1))
    assert res.rules["antecedent"].str.contains(XSS, regex=False).any()  # the data keeps the real name
    html = network_html(rules_graph(res.rules, res.items))
    assert "<img" not in html and "onerror=alert(1)>" not in html
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in html  # JSON-escaped inside the script, drawn as text
    assert not re.search(r"<(?:script|link)[^>]+https?://", html)  # no CDN asset
    assert "vis.Network" in html and len(html) > 500_000  # vis-network inlined
    assert clean_text("a\x00b\u202ec" + "x" * 300, 10) == "abcxxxxxx…"


def test_href_in_a_title_keeps_the_text_tooltip():
    """pyvis 0.3.2 turns every node title into live HTML (``popup.innerHTML``) once any title contains "href"."""
    link, img = '<a href="javascript:alert(8)">x</a>', "<img src=x onerror=alert(2)>"
    baskets = [[link, img]] * 4 + [[link]]
    res = mine_rules_con(con_over(events_from_baskets(baskets)), RuleParams(
        scope="purchases", granularity="product", min_support=0.1, min_confidence=0.0, min_lift=0.0, min_baskets=1))
    html = network_html(rules_graph(res.rules, res.items))
    assert "popup.innerHTML" not in html  # pyvis' HTML popup is not in the page
    assert "<img" not in html and "<a href" not in html
    assert text_tooltip('see href here') != 'see href here' and "href" not in text_tooltip("href")


def test_product_labels_use_names_and_keep_known_brand_and_category():
    baskets = [["A", "B"]] * 3 + [["A"]]
    names = pd.DataFrame({"product_id": [product_id("A"), product_id("B")], "stock_code": ["85123A", "71053"],
                          "name": ["WHITE HANGING HEART T-LIGHT HOLDER", XSS]})
    con = con_over(events_from_baskets(baskets, category={"A": "home.decor.candle"}))
    params = RuleParams(scope="purchases", granularity="product", min_support=0.1, min_confidence=0.0, min_lift=0.0,
                        min_baskets=1)
    label = mine_rules_con(con, params, names=names).items.set_index("item")["label"]
    pa, pb = str(product_id("A")), str(product_id("B"))
    price = lambda p: f"${10.0 + int(p) % 7:,.2f}"  # noqa: E731  (events_from_baskets' price)
    assert label[pa] == f"WHITE HANGING HEART T-LIGHT HOLDER · A · candle · #85123A · {price(pa)}"
    assert label[pb] == f"{XSS} · B · #71053 · {price(pb)}"  # plain text: escaped where it is drawn
    assert mine_rules_con(con, params).items.set_index("item")["label"][pa] == f"A · candle · #{pa} · {price(pa)}"
    res = mine_rules_con(con, params, names=names)
    html = network_html(rules_graph(res.rules, res.items))
    assert "WHITE HANGING HEART T-LIGHT HOLDER" in html and "<img" not in html


UCI_PARAMS = RuleParams(scope="purchases", granularity="product", min_support=0.1, min_confidence=0.0, min_lift=0.0,
                        min_baskets=1)


def test_rules_over_a_uci_store_are_labelled_by_description(tmp_path):
    from recsys.ingest.stage import build_events
    from recsys.rules.mining import mine_rules
    from tests.stores import write_named_uci
    build_events(tmp_path, [write_named_uci(tmp_path / "retail.csv")])
    res = mine_rules(tmp_path, UCI_PARAMS)
    assert "WHITE HANGING HEART T-LIGHT HOLDER · #85123A · $2.55" in set(res.items["label"])
    assert "HAND WARMER UNION JACK" in " ".join(res.rules["antecedent"])


def test_a_damaged_names_file_falls_back_to_ids(tmp_path, caplog):
    from recsys.ingest.uci import stock_code_id
    from recsys.ingest.stage import build_events
    from recsys.rules.mining import mine_rules
    from tests.stores import write_named_uci
    build_events(tmp_path, [write_named_uci(tmp_path / "retail.csv")])
    (tmp_path / "events" / "item_names.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    with caplog.at_level("WARNING", logger="recsys.ingest.adapters"):
        res = mine_rules(tmp_path, UCI_PARAMS)
    assert f"no brand · uncategorised · #{stock_code_id('85123A')} · $2.55" in set(res.items["label"])
    assert "labels fall back" in caplog.text


def test_build_stage_on_the_demo_store(demo_artifacts):
    m, built = build_rules_stage(demo_artifacts)
    assert not built  # the full build already made it, and nothing changed
    assert set(m["files"]) == {"rules.parquet", "items.parquet", "category_complements.parquet"}
    assert m["files"]["rules.parquet"]["schema"]["lift"] == "double"
    res = load_rules(demo_artifacts)
    assert 10 <= len(res.rules) <= 500, "defaults must give tens to a few hundred rules"
    assert m["rows"]["rules"] == len(res.rules) and m["note"] is None
    support = m["params"]["min_support"]  # the auto support, resolved to a number
    assert m["requested_params"]["min_support"] is None and 0 < support < 1
    assert (res.rules["lift"] >= 1.5).all() and (res.rules["support"] >= support - 1e-12).all()
    assert res.rules["lift"].is_monotonic_decreasing
    assert not res.stats["complements"].empty
    g = rules_graph(res.rules, res.items, 50)
    assert 0 < g.number_of_edges() and g.number_of_nodes() <= res.items.shape[0]


def test_defaults_on_the_real_head(head_csv, tmp_path):
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events
    build_events(tmp_path, [head_csv], IngestParams(source="files"))
    build_rules_stage(tmp_path)
    res = load_rules(tmp_path)
    assert 10 <= len(res.rules) <= 500  # co-views: 5,066 view sessions in the head


def test_build_stage_survives_a_guard_and_records_the_note(tmp_path):
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events
    df = events_from_baskets(random_baskets(5, n=200), event_type="view")
    df["event_time"] = df["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    df.to_csv(tmp_path / "tiny.csv", index=False)
    build_events(tmp_path / "art", [tmp_path / "tiny.csv"], IngestParams(source="files"))
    m, built = build_rules_stage(tmp_path / "art", params=RuleParams(min_support=0.01, max_itemsets=2))
    assert built and "raise min support" in m["note"] and m["rows"]["rules"] == 0
    res = load_rules(tmp_path / "art")
    assert res.rules.empty and list(res.items.columns[:3]) == ["item", "baskets", "support"]
    assert len(res.stats["complements"]) == 0  # views only: no purchase baskets
    m2, built2 = build_rules_stage(tmp_path / "art")  # other parameters: rebuilt, and now fine
    assert built2 and m2["note"] is None and m2["rows"]["rules"] > 0


def test_sparse_one_hot_gives_the_same_rules(monkeypatch):
    import recsys.rules.mining as R
    con = con_over(events_from_baskets(random_baskets(2)))
    base = dict(scope="purchases", granularity="brand", min_support=0.01, min_confidence=0.1, min_lift=0.0,
                min_baskets=1)
    dense = mine_rules_con(con, RuleParams(**base)).rules
    monkeypatch.setattr(R, "DENSE_LIMIT_MB", 0)  # force the sparse matrix
    for algorithm in ("apriori", "fpgrowth"):
        res = mine_rules_con(con, RuleParams(**base, algorithm=algorithm))
        assert res.stats["sparse"]
        pd.testing.assert_frame_equal(res.rules.drop(columns=["antecedent_items", "consequent_items"]),
                                      dense.drop(columns=["antecedent_items", "consequent_items"]))


def test_a_purchase_log_without_views_gets_rules_from_its_orders(tmp_path):
    """A store with no views (a UCI-style purchase log) mines its default rules from carts and purchases, and the
    manifest says so; the same baskets as views would be mined from views as before."""
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events
    baskets = [["tea", "mug"]] * 30 + [["tea"]] * 20 + [["bread", "jam"]] * 25 + [["bread"]] * 25
    df = events_from_baskets(baskets, event_type="purchase")
    df["event_time"] = df["event_time"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    df.to_csv(tmp_path / "orders.csv", index=False)
    build_events(tmp_path / "art", [tmp_path / "orders.csv"], IngestParams(source="files"))
    m, _ = build_rules_stage(tmp_path / "art")
    assert m["params"]["scope"] == "purchases_carts" and "no views" in m["note"]
    rules = load_rules(tmp_path / "art").rules
    pairs = {(a, c) for a, c in zip(rules["antecedent_items"].map(tuple), rules["consequent_items"].map(tuple))}
    tea, mug, bread, jam = (str(product_id(n)) for n in ("tea", "mug", "bread", "jam"))
    assert {((mug,), (tea,)), ((jam,), (bread,))} <= pairs  # confidence 1.0, lift 100/50 = 2
