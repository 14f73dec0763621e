"""The aggregates stage on Spark gives the same tables as on DuckDB: a hand-made store with the edge cases (zero
prices, so NULL price bins in the sort; several categories, brands and sessions; a purchase-only user), the demo
store and the real REES46 head."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys import schema as S
from recsys.artifacts import stage_dir
from recsys.aggregates.stage import build_aggregates_stage
from tests.stores import assert_same_tables, write_events_stage

pytestmark = pytest.mark.spark


def _tiny_store(root: Path) -> Path:
    t = pd.Timestamp("2019-10-01 09:00:00", tz="UTC")
    return write_events_stage(root, [  # time, type, product, category_id, code, brand, price, user, session
        (t, "view", 1, 10, "electronics.phone", "acme", 100.0, 1, "s1"),
        (t + pd.Timedelta(minutes=2), "cart", 1, 10, "electronics.phone", "acme", 100.0, 1, "s1"),
        (t + pd.Timedelta(minutes=3), "purchase", 1, 10, "electronics.phone", "acme", 100.0, 1, "s1"),
        (t + pd.Timedelta(minutes=4), "view", 2, 20, "kids.toy", "zeta", 0.0, 1, "s1"),  # zero price
        (t + pd.Timedelta(days=8), "view", 2, 20, "kids.toy", "zeta", 0.0, 1, "s2"),
        (t + pd.Timedelta(days=8, hours=1), "purchase", 3, 30, S.UNKNOWN_CATEGORY, S.UNKNOWN_BRAND, 9.99, 2, "s3"),
        (t + pd.Timedelta(days=40), "remove_from_cart", 1, 10, "electronics.phone", "acme", 100.0, 2, "s4"),
        (t + pd.Timedelta(days=40, seconds=5), "view", 4, 10, "electronics.phone", "beta", 2600.0, 3, "s5"),
    ])


def _both_engines(root: Path, tmp_path: Path, spark_spec) -> tuple[Path, Path]:
    """The aggregates stage of ``root`` built by DuckDB and by Spark (in a copy): the two stage folders."""
    build_aggregates_stage(root)
    other = tmp_path / "spark-root"
    shutil.copytree(root, other)
    manifest, built = build_aggregates_stage(other, force=True, engine=spark_spec)
    assert built and manifest["engine"] == "spark"
    return stage_dir(root, "aggregates"), stage_dir(other, "aggregates")


def _assert_same_stage(duck: Path, spark: Path) -> None:
    assert assert_same_tables(duck, spark) == 12
    assert json.loads((duck / "kpis.json").read_text()) == json.loads((spark / "kpis.json").read_text())
    assert sorted(p.name for p in spark.iterdir()) == sorted(p.name for p in duck.iterdir())  # no part files left


def test_hand_made_store_same_tables_on_both_engines(tmp_path, spark_spec):
    duck, spark = _both_engines(_tiny_store(tmp_path / "art"), tmp_path, spark_spec)
    _assert_same_stage(duck, spark)
    prices = pq.read_table(spark / "prices.parquet").to_pandas()
    assert prices["price_bin"].isna().sum() == 2  # the zero-price rows: NULL bins, sorted last within their keys
    kpis = json.loads((spark / "kpis.json").read_text())
    assert (kpis["events"], kpis["sessions"], kpis["purchases"], kpis["revenue"]) == (8, 5, 2, 109.99)


@pytest.mark.slow
def test_demo_store_same_tables_on_both_engines(tmp_path, spark_spec):
    from recsys.build import build_demo_input
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events
    root = tmp_path / "art"
    build_events(root, [build_demo_input(root, events=20_000, seed=3)], IngestParams(source="demo"))
    _assert_same_stage(*_both_engines(root, tmp_path, spark_spec))


@pytest.mark.slow
def test_real_head_same_tables_on_both_engines(tmp_path, spark_spec, head_csv):
    from recsys.ingest.stage import build_events
    root = tmp_path / "art"
    build_events(root, [head_csv])
    _assert_same_stage(*_both_engines(root, tmp_path, spark_spec))
