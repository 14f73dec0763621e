"""AppTest of the Affinity page: default rules, moved thresholds, an item picked, a guard message, complements."""
from __future__ import annotations

import pytest

from recsys.rules.stage import load_rules

PAGE = "pages/affinity.py"
TABS = {"aff-rules": (1, 0), "aff-neigh": (2, 0), "aff-item-rules": (2, 1), "aff-cc": (3, 0)}


@pytest.fixture()
def affinity(app_env):
    at = app_env()
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _tables(at) -> dict:
    """The page's tables by name (AppTest exposes dataframes by position within each tab)."""
    out = {}
    for name, (tab, i) in TABS.items():
        frames = at.tabs[tab].dataframe
        if len(frames) > i:
            out[name] = frames[i].value
    return out


def test_default_rules_network_and_complements(affinity, demo_artifacts):
    at = affinity
    assert not at.error and not at.warning
    built = load_rules(demo_artifacts)
    rules = _tables(at)["aff-rules"]
    assert len(rules) == len(built.rules) > 0
    assert list(rules.columns[:5]) == ["antecedent", "consequent", "support", "confidence", "lift"]
    assert set(rules["antecedent"]) <= set(built.rules["antecedent"])  # labels, not bare ids
    assert rules["antecedent"].str.contains(" · #").all()
    srcdoc = at.get("iframe")[0].proto.srcdoc
    assert "vis.Network" in srcdoc and "cdn.jsdelivr" not in srcdoc and "cdnjs" not in srcdoc
    assert "aff-cc" in _tables(at) and at.get("plotly_chart")
    assert at.slider(key="aff-top").value == min(50, len(built.rules))
    cc = built.stats["complements"]
    assert len(_tables(at)["aff-cc"]) == len(cc)
    at.number_input(key="aff-cc-min").set_value(2).run()
    assert not at.exception and len(_tables(at)["aff-cc"]) == (cc["baskets"] >= 2).sum()


def test_thresholds_moved_and_item_picked(affinity, demo_artifacts):
    at = affinity
    before = len(_tables(at)["aff-rules"])
    at.slider(key="aff-lift").set_value(1.0).run()
    at.slider(key="aff-conf").set_value(0.01).run()
    assert not at.exception and not at.warning
    looser = _tables(at)["aff-rules"]
    assert len(looser) >= before and looser["lift"].min() >= 1.0 and looser["confidence"].min() >= 0.01
    from ui.affinity import SUPPORTS
    from recsys.rules.stage import default_params
    built = default_params(demo_artifacts).min_support  # the auto support the build resolved
    at.select_slider(key="aff-support").set_value(min(v for v in SUPPORTS if v > 2 * built)).run()
    stricter = _tables(at)["aff-rules"]
    assert not at.exception and len(stricter) < len(looser)
    at.select_slider(key="aff-support").set_value("auto").run()  # back to auto: the built rules
    assert len(_tables(at)["aff-rules"]) == len(looser)
    at.slider(key="aff-top").set_value(5).run()
    assert not at.exception
    box = at.selectbox(key="aff-item")
    assert len(box.options) >= 2
    box.select_index(1).run()
    assert not at.exception
    box = at.selectbox(key="aff-item")
    items = load_rules(demo_artifacts).items
    picked = dict(zip(items["label"], items["item"]))[box.value]
    tables = _tables(at)
    assert len(tables["aff-neigh"]) >= 1 and len(tables["aff-item-rules"]) >= 1
    assert picked not in set(tables["aff-neigh"]["item"])  # neighbours are the other items
    mine = tables["aff-item-rules"]
    assert all(box.value in f"{a} + {c}" for a, c in zip(mine["antecedent"], mine["consequent"]))


def test_guard_shows_a_message(affinity):
    at = affinity
    at.select_slider(key="aff-support").set_value(0.00005).run()
    at.slider(key="aff-maxlen").set_value(5).run()
    assert not at.exception
    assert at.warning and "min support" in at.warning[0].value


def test_other_granularity_scope_and_basket(affinity):
    at = affinity
    at.selectbox(key="aff-gran").set_value("brand").run()
    assert not at.exception
    assert len(_tables(at)["aff-rules"]) > 0
    at.selectbox(key="aff-scope").set_value("purchases").run()
    at.selectbox(key="aff-gran").set_value("product").run()
    assert not at.exception and not at.warning  # few or no purchase rules: an info, not an error
    at.selectbox(key="aff-basket").set_value("user and day (UTC)").run()
    assert not at.exception
    assert "aff-cc" in _tables(at) or at.info
