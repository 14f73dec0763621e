"""The evaluation protocol on tiny known stores, the stage on the demo build, the CLI and the page."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.evaluation.protocol import EvalConfig, evaluate, sample_users, target_matrix, temporal_split
from recsys.evaluation.stage import evaluation_records, load_evaluation, results_table
from recsys.ingest.interactions import Interactions

V, C, P = (S.EVENT_TYPES.index(e) for e in (S.VIEW, S.CART, S.PURCHASE))


def store(rows: list[tuple[int, int, int, int]], n_users: int = 4, n_items: int = 5) -> Interactions:
    """(user, item, event, ts) rows, sorted by ts; items 0-1 in category 0, the rest in category 1."""
    rows = sorted(rows, key=lambda r: r[3])
    u, i, e, t = (np.array(c) for c in zip(*rows))
    cat = pd.DataFrame({"product_id": np.arange(n_items), "category_id": (np.arange(n_items) >= 2).astype(int),
                        "category_code": ["a" if c < 2 else "b" for c in range(n_items)], "brand": "x",
                        "price": 1.0, "views": 0, "carts": 0, "purchases": 0})
    return Interactions(u.astype(np.int32), i.astype(np.int32), e.astype(np.int8), t.astype(np.int64),
                        u.astype(np.int64), np.arange(n_users), np.arange(n_items), cat)


# training (t < 100): user 0 views 0, 1; user 1 buys 2 and views 0; user 2 views 0.
# test (t >= 100): user 0 buys 1 (seen) and carts 3 (new); user 1 views 4; user 3 (no history) buys 0.
ROWS = [(0, 0, V, 10), (0, 1, V, 20), (1, 2, P, 30), (1, 0, V, 40), (2, 0, V, 50), (2, 0, V, 60),
        (0, 1, P, 100), (0, 3, C, 110), (1, 4, V, 120), (3, 0, P, 130)]


def test_temporal_split_cuts_at_the_event_quantile():
    s = temporal_split(store(ROWS), test_fraction=0.4)
    assert s.cut == 100
    assert s.train.ts.max() < s.cut <= s.test.ts.min()
    assert len(s.train.ts) == 6 and len(s.test.ts) == 4
    with pytest.raises(ValueError, match="test_fraction"):
        temporal_split(store(ROWS), 1.5)


def test_targets_need_history_and_honour_the_variant_and_exclude_seen():
    s = temporal_split(store(ROWS), 0.4)
    buy = target_matrix(s, ("cart", "purchase"), exclude_seen=False)
    assert {u: set(buy[u].indices) for u in range(4) if buy[u].nnz} == {0: {1, 3}}  # user 3: no history
    view = target_matrix(s, ("view", "cart", "purchase"), exclude_seen=False)
    assert {u: set(view[u].indices) for u in range(4) if view[u].nnz} == {0: {1, 3}, 1: {4}}
    new = target_matrix(s, ("cart", "purchase"), exclude_seen=True)
    assert {u: set(new[u].indices) for u in range(4) if new[u].nnz} == {0: {3}}  # item 1 was seen
    assert sample_users(view, 1, seed=0).tolist() in ([0], [1])
    assert sample_users(view, 5, seed=0).tolist() == [0, 1]


def test_known_answers_for_popular_and_recently_viewed():
    res = evaluate(store(ROWS), EvalConfig(test_fraction=0.4, ks=(1, 2), models=("popular", "recently_viewed"),
                                           n_boot=20))
    r = res.results.set_index(["model", "targets", "exclude_seen", "metric", "k"])["value"]
    # popular: item 0 (views 1+1+1+1 = 4) then item 2 (purchase = 5)? no: 2 scores 5, 0 scores 4 -> [2, 0, ...]
    # user 0's buy targets {1, 3}: no hit in the top 2
    assert r[("popular", "buy", False, "hit_rate", 2)] == 0.0
    # recently viewed for user 0: [1, 0] (item 1 last): hit at rank 1 -> recall 1/2, NDCG 1 / (1 + 1/log2 3)
    assert r[("recently_viewed", "buy", False, "recall", 1)] == pytest.approx(0.5)
    assert r[("recently_viewed", "buy", False, "ndcg", 2)] == pytest.approx(1 / (1 + 1 / np.log2(3)))
    assert r[("recently_viewed", "buy", False, "mrr", 2)] == 1.0
    # views variant, user 1 (target 4, never seen): recently viewed cannot hit it
    assert ("recently_viewed", "buy", True, "recall", 1) not in r.index  # own items only: no exclude_seen rows
    # exclude_seen: popular for user 0 excludes 0 and 1 -> [2, 3]: target 3 at rank 2
    assert r[("popular", "buy", True, "mrr", 2)] == pytest.approx(0.5)
    assert r[("popular", "buy", False, "coverage", 2)] == pytest.approx(2 / 5)
    assert any("own items" in n for n in res.summary["notes"])
    assert res.summary["users"] == {"buy|exclude_seen=False": 1, "buy|exclude_seen=True": 1,
                                    "view|exclude_seen=False": 2, "view|exclude_seen=True": 2}


def test_demo_stage_files_schema_and_intervals(demo_artifacts):
    res = load_evaluation(demo_artifacts)
    df = res.results
    assert list(df.columns) == ["model", "targets", "exclude_seen", "metric", "k", "value", "ci_low", "ci_high",
                                "n_users"]
    assert {"popular", "item_knn", "user_knn", "svd", "als", "mf_mse", "ncf", "recently_viewed"} <= set(df.model)
    assert set(df.k) == {10, 20, 50} and set(df.targets) == {"buy", "view"} and set(df.exclude_seen) == {False, True}
    assert {"recall", "ndcg", "hit_rate", "mrr", "coverage", "diversity", "novelty"} == set(df.metric)
    ok = df.dropna(subset=["value"])
    assert ((ok.ci_low <= ok.value + 1e-9) & (ok.value <= ok.ci_high + 1e-9)).all()
    bounded = ok[ok.metric != "novelty"]
    assert bounded.value.between(0, 1).all()
    # more K can only find more: recall and hit rate are monotone in K
    for metric in ("recall", "hit_rate"):
        wide = df[df.metric == metric].pivot_table(index=["model", "targets", "exclude_seen"], columns="k",
                                                   values="value")
        assert (wide[10] <= wide[20] + 1e-12).all() and (wide[20] <= wide[50] + 1e-12).all()
    assert (demo_artifacts / "evaluation" / "results.json").exists()
    assert res.summary["duration_s"] > 0 and res.summary["cut"]
    if "two_tower" in set(df.model):
        assert not res.curve.empty and list(res.curve.diversity_weight) == [round(0.1 * i, 1) for i in range(11)]
        # the MMR weight trades accuracy for diversity: the last point is at least as diverse as the first
        assert res.curve.diversity.iloc[-1] >= res.curve.diversity.iloc[0]
    else:
        assert any("two-tower" in n.lower() for n in res.summary["notes"])
    table = results_table(df)
    assert table.index[0] == table["ndcg@20"].idxmax()


def test_cli_evaluate_json_and_table(demo_artifacts, capsys):
    from recsys.cli import main
    assert main(["evaluate", "--artifacts", str(demo_artifacts), "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs and all(set(r) == {"model", "metric", "k", "value", "ci_low", "ci_high"} for r in recs)
    assert {"popular", "ncf"} <= {r["model"] for r in recs}
    assert main(["evaluate", "--artifacts", str(demo_artifacts), "--json", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert len(every) > len(recs) and {r["exclude_seen"] for r in every} == {False, True}
    assert main(["evaluate", "--artifacts", str(demo_artifacts)]) == 0
    out = capsys.readouterr().out
    assert "Temporal split at" in out and "popular" in out and "ndcg@20" in out
    assert evaluation_records(load_evaluation(demo_artifacts).results) == recs


def test_cli_evaluate_without_a_build_says_what_to_run(tmp_path, capsys):
    from recsys.cli import main
    assert main(["evaluate", "--artifacts", str(tmp_path)]) == 2
    assert "python -m recsys build" in capsys.readouterr().err


def test_evaluation_page(app_env):
    at = app_env()
    at.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception
    assert at.title[0].value.startswith("🧪")
    assert len(at.get("plotly_chart")) >= 1 and len(at.dataframe) >= 1
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "NDCG@20" in spec["layout"]["title"]["text"] and spec["data"][0]["error_y"]["array"]
    assert any("protocol" in e.proto.label.lower() for e in at.get("expander"))
    at.toggle(key="eval-exclude-seen").set_value(True).run()
    at.radio(key="eval-targets").set_value("view").run()
    at.selectbox(key="eval-metric").set_value("coverage").run()
    at.selectbox(key="eval-k").set_value(50).run()
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "Catalog coverage@50" in spec["layout"]["title"]["text"]


def test_the_stage_reruns_when_the_served_model_config_changes(tmp_path, monkeypatch):
    """The evaluation fits the two-tower and the ranker with their defaults: changing those defaults re-runs the
    stage (it used to report the previous model's figures as up to date)."""
    from dataclasses import dataclass

    import recsys.model.towers as tt_model
    from recsys.ingest.demo_wholesale import write_wholesale_rees46
    from recsys.evaluation.stage import build_evaluation_stage
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events

    write_wholesale_rees46(tmp_path / "orders.csv", lines=3000, seed=2)
    build_events(tmp_path / "art", [tmp_path / "orders.csv"], IngestParams(source="files"))
    cfg = EvalConfig(models=("popular",), n_boot=10, curve_weights=())
    assert build_evaluation_stage(tmp_path / "art", config=cfg)[1]
    assert not build_evaluation_stage(tmp_path / "art", config=cfg)[1]  # up to date

    @dataclass
    class Longer(tt_model.TwoTowerConfig):
        budget_factor: float = 3.0

    monkeypatch.setattr(tt_model, "TwoTowerConfig", Longer)
    manifest, built = build_evaluation_stage(tmp_path / "art", config=cfg)
    assert built and manifest["params"]["models_config"]["two_tower"]["budget_factor"] == 3.0


class _Fixed:
    """A model outside every base class, known only through the Recommender protocol: the same list for all."""

    def __init__(self, name: str, items: list[int], only_seen: bool = False) -> None:
        self.name, self.items, self.only_seen, self.calls = name, items, only_seen, []

    def fit(self, train):
        return self

    def recommend(self, user_codes, k, *, exclude_seen=False):
        raise AssertionError("the evaluation asks for every setting at once")

    def recommend_settings(self, user_codes, k, settings=(False, True)):
        from recsys.recommenders.base import Recommendations
        self.calls.append(tuple(settings))
        row = (self.items + [-1] * k)[:k]
        return {ex: Recommendations(np.array([row] * len(user_codes), np.int64),
                                    np.zeros((len(user_codes), k), np.float32)) for ex in settings}

    def similar_items(self, item_code, k):
        raise NotImplementedError


def test_the_evaluation_scores_any_model_through_the_protocol(monkeypatch):
    """No type checks or name cases: a new model is scored on exactly the lists it returns, once per run, and a
    model that declares ``only_seen`` gets no exclude_seen rows."""
    from recsys.recommenders import registry
    from recsys.recommenders.base import Recommender
    made = {"fixed": _Fixed("fixed", [3, 1]), "own": _Fixed("own", [1, 0], only_seen=True)}
    assert all(isinstance(m, Recommender) for m in made.values())
    for name, model in made.items():
        monkeypatch.setitem(registry.REGISTRY, name, lambda m=model, **kw: m)
    res = evaluate(store(ROWS), EvalConfig(test_fraction=0.4, ks=(1, 2), models=("fixed", "own"), n_boot=20))
    r = res.results.set_index(["model", "targets", "exclude_seen", "metric", "k"])["value"]
    assert made["fixed"].calls == [(False, True)] and made["own"].calls == [(False,)]
    # user 0's buy targets {1, 3}; the list [3, 1] holds both: recall@2 = NDCG@2 = 1; new items only {3}: rank 1
    assert r[("fixed", "buy", False, "recall", 2)] == 1.0 and r[("fixed", "buy", False, "ndcg", 2)] == 1.0
    assert r[("fixed", "buy", True, "mrr", 2)] == 1.0
    # [1, 0]: item 1 at rank 1 -> recall@1 = 1/2; no exclude_seen rows for a model of own items
    assert r[("own", "buy", False, "recall", 1)] == pytest.approx(0.5)
    assert not any(ex for (m, _, ex, _, _) in r.index if m == "own")
