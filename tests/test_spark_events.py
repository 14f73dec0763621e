"""The events stage on Spark gives DuckDB's events file and quality report: a hand-made file with every kind of bad
line, the real REES46 head (a truncated last line) and a generated demo store (duplicates, fills)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys.ingest import IngestError, IngestParams, ingest_files
from recsys.spark_ingest import ingest_files_spark
from tests.stores import assert_same_tables

pytestmark = pytest.mark.spark

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
LINES = [
    "2019-10-01 00:00:00 UTC,view,1,2,a.b,\"br,x\",1.5,10,s1",   # a quoted comma
    "2019-10-01 00:00:00 UTC,view,1,2,a.b,\"br,x\",1.5,10,s1",   # its exact duplicate
    "2019-10-01 00:00:01 UTC,view,1,2,a.b,br,1.5,10",           # a field short
    "2019-10-01 00:00:02 UTC,view,1,2,a.b,br,1.5,10,s1,extra",  # a field too many
    "bad time,view,1,2,a.b,br,1.5,10,s1",                       # not a timestamp
    "2019-10-01 00:00:03 UTC,view,x1,2,a.b,br,1.5,10,s1",       # not a number
    "2019-10-01 00:00:04 UTC,view,1,2,,,1.5,10,",               # no session
    "2019-10-01 00:00:05 UTC,view,1,2,a.b,br,nan,10,s2",        # a non-finite price: invalid
    "2019-10-01 00:00:06 UTC,click,1,2,a.b,br,1.5,10,s2",       # an unknown event type: invalid
    "2019-10-01 00:00:07 UTC,view,1,2,a.b,br,1.5,10,s1,",       # a trailing comma: read as a whole row
    "2019-10-01 00:00:08 UTC,cart,1,2,,,0,11,s3",               # zero price; brand + code from product 1
    "2019-10-01 00:00:08 UTC,cart,7,2,,,3,11,s3",               # brand from category 2 (one known brand? no: two)
    "2019-10-01 00:00:09 UTC,view,8,9,c.d,solo,4,12,s4",
    "2019-10-01 00:00:09 UTC,view,9,9,,,4,12,s4",               # brand and code from category 9
    "2019-10-01 00:00:0",                                       # truncated last line
]


def _compare(paths: list[Path], tmp_path: Path, spec) -> dict:
    duck, spark = tmp_path / "duck", tmp_path / "spark"
    duck.mkdir()
    spark.mkdir()
    params = IngestParams(max_bad_fraction=0.5)  # the hand-made file is a third bad lines
    a, b = ingest_files(paths, duck, params), ingest_files_spark(paths, spark, params, spec)
    sample_keys = ("file", "content")  # Spark knows no line numbers and words its errors its own way
    assert [{k: s[k] for k in sample_keys} for s in a.pop("unparsable_samples")] == \
        [{k: s[k] for k in sample_keys} for s in b.pop("unparsable_samples")]
    assert a == b
    assert json.loads((spark / "quality.json").read_text())["rows_kept"] == b["rows_kept"]
    assert assert_same_tables(duck, spark) == 1  # events.parquet, row for row
    assert sorted(p.name for p in spark.iterdir()) == ["events.parquet", "quality.json"]
    return b


def test_hand_made_file_same_events_and_report(tmp_path, spark_spec):
    src = tmp_path / "t.csv"
    src.write_text("\n".join([HEADER, *LINES]))
    report = _compare([src], tmp_path, spark_spec)
    assert report["dropped"] == {"unparsable": 5, "invalid_value": 2, "no_session": 1, "duplicate": 1}
    assert report["unparsable_by_reason"] == {"missing_columns": 2, "too_many_columns": 1, "cast_event_time": 1,
                                              "cast_product_id": 1}
    assert report["filled"]["brand_from_product"] == 1 and report["filled"]["brand_from_category"] == 1
    assert report["price_zero_kept"] == 1


def test_two_files_out_of_time_order(tmp_path, spark_spec):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("\n".join([HEADER, LINES[12], LINES[13]]))  # later events in the first file
    second.write_text("\n".join([HEADER, LINES[0], LINES[10]]))
    assert _compare([first, second], tmp_path, spark_spec)["rows_kept"] == 4


def test_mostly_garbage_is_refused(tmp_path, spark_spec):
    src = tmp_path / "bad.csv"
    src.write_text("\n".join([HEADER, LINES[0]] + ["garbage,line"] * 5))
    with pytest.raises(IngestError, match="rows cannot be parsed"):
        ingest_files_spark([src], tmp_path, spec=spark_spec)


@pytest.mark.slow
def test_real_head_same_events_and_report(tmp_path, spark_spec, head_csv):
    report = _compare([head_csv], tmp_path, spark_spec)
    assert report["dropped"]["unparsable"] == 1  # the truncated last line


@pytest.mark.slow
def test_demo_store_same_events_and_report(tmp_path, spark_spec):
    from recsys.build import build_demo_input
    report = _compare([build_demo_input(tmp_path / "raw", events=20_000, seed=3)], tmp_path, spark_spec)
    assert report["dropped"]["duplicate"] > 0 and report["filled"]["brand_from_category"] > 0
