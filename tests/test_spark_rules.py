"""The rules stage on Spark (baskets counted on Spark, frequent itemsets by Spark ML's FP-growth) gives the same
rules, items and category complements as on DuckDB: hand-made baskets with known supports, a guard that trips,
the demo store and the real REES46 head."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from recsys.artifacts import read_manifest, stage_dir
from recsys.rules.params import RuleParams
from recsys.rules.stage import build_rules_stage, load_rules
from tests.stores import write_events_stage

pytestmark = pytest.mark.spark

T = pd.Timestamp("2019-10-01 09:00:00", tz="UTC")
BASKETS = {"s1": (1, 2), "s2": (1, 2), "s3": (1, 3), "s4": (2,)}  # session -> products viewed


def _store(root: Path) -> Path:
    rows = [(T + pd.Timedelta(minutes=i), "view", p, 10 * p, f"cat.c{p}", f"b{p}", 5.0 * p, u, s)
            for i, (u, (s, ps)) in enumerate(enumerate(BASKETS.items())) for p in ps]
    rows += [(T, "purchase", 1, 10, "cat.c1", "b1", 5.0, 9, "p1"),
             (T, "purchase", 2, 20, "cat.c2", "b2", 10.0, 9, "p1")]
    return write_events_stage(root, rows)


def _both(root: Path, tmp_path: Path, spec, params: RuleParams) -> tuple[Path, Path]:
    build_rules_stage(root, params=params)
    other = tmp_path / "spark-root"
    shutil.copytree(root, other)
    build_rules_stage(other, force=True, params=params, engine=spec)
    assert read_manifest(other, "rules")["engine"] == "spark"
    return root, other


def _assert_same(a: Path, b: Path) -> None:
    ra, rb = load_rules(a), load_rules(b)
    pd.testing.assert_frame_equal(ra.rules, rb.rules, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(ra.items, rb.items, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(ra.stats["complements"], rb.stats["complements"], check_exact=False, rtol=1e-9)
    assert read_manifest(a, "rules")["note"] == read_manifest(b, "rules")["note"]
    assert sorted(p.name for p in stage_dir(b, "rules").iterdir()) == \
        sorted(p.name for p in stage_dir(a, "rules").iterdir())  # no scratch left behind


def test_known_supports_on_both_engines(tmp_path, spark_spec):
    params = RuleParams(scope="views", min_support=0.5, min_baskets=1, min_confidence=0.5, min_lift=0.0)
    a, b = _both(_store(tmp_path / "art"), tmp_path, spark_spec, params)
    _assert_same(a, b)
    rules = load_rules(b).rules
    assert sorted(map(tuple, rules["antecedent_items"])) == [("1",), ("2",)]  # 1 -> 2 and 2 -> 1 only
    assert rules["support"].tolist() == [0.5, 0.5]  # {1, 2} in 2 of the 4 view baskets
    assert rules["confidence"].round(12).tolist() == [round(2 / 3, 12)] * 2
    assert rules["lift"].round(12).tolist() == [round(0.5 / (0.75 * 0.75), 12)] * 2


def test_a_guard_trips_alike_on_both_engines(tmp_path, spark_spec):
    params = RuleParams(scope="views", min_support=0.01, min_baskets=1, max_itemsets=1)
    a, b = _both(_store(tmp_path / "art"), tmp_path, spark_spec, params)
    assert "frequent itemsets" in read_manifest(b, "rules")["note"]
    _assert_same(a, b)


@pytest.mark.slow
def test_demo_store_same_rules(tmp_path, spark_spec):
    from recsys.build import build_demo_input
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events
    root = tmp_path / "art"
    build_events(root, [build_demo_input(root, events=20_000, seed=3)], IngestParams(source="demo"))
    a, b = _both(root, tmp_path, spark_spec, RuleParams())
    assert len(load_rules(b).rules) > 0
    _assert_same(a, b)


@pytest.mark.slow
def test_real_head_same_rules(tmp_path, spark_spec, head_csv):
    from recsys.ingest.stage import build_events
    root = tmp_path / "art"
    build_events(root, [head_csv])
    a, b = _both(root, tmp_path, spark_spec, RuleParams())
    assert len(load_rules(b).rules) > 0
    _assert_same(a, b)
