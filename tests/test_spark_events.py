"""The events stage on Spark gives DuckDB's events file and quality report: a hand-made file with every kind of bad
line (known answers), odd inputs (names, .gz, .zip, URIs, globs), the real REES46 head and a generated demo store;
and the few exotic edges where the two engines' parsers disagree, pinned so a change shows."""
from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import schema as S
from recsys.ingest.reader import IngestError, IngestParams, ingest_files
from recsys.ingest.spark import ingest_files_spark

pytestmark = pytest.mark.spark

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
LINES = [
    '2019-10-01 00:00:00 UTC,view,1,2,a.b,"br,x",1.5,10,s1',     # 1  a quoted comma
    '2019-10-01 00:00:00 UTC,view,1,2,a.b,"br,x",1.5,10,s1',     # 2  its exact duplicate
    "2019-10-01 00:00:01 UTC,view,1,2,a.b,br,1.5,10",             # 3  a field short
    "2019-10-01 00:00:02 UTC,view,1,2,a.b,br,1.5,10,s1,extra",    # 4  a field too many
    "bad time,view,1,2,a.b,br,1.5,10,s1",                         # 5  not a timestamp
    '2019-10-01 00:00:03 UTC,view,x1,2,a.b,"q,uoted",1.5,10,s1',  # 6  not a number (sample rebuilt with quotes)
    "2019-10-01 00:00:04 UTC,view,1,2,,,1.5,10,",                 # 7  no session
    "2019-10-01 00:00:05 UTC,view,1,2,a.b,br,nan,10,s2",          # 8  a non-finite price: invalid
    "2019-10-01 00:00:06 UTC,click,1,2,a.b,br,1.5,10,s2",         # 9  an unknown event type: invalid
    "2019-10-01 00:00:07 UTC,view,1,2,a.b,br,1.5,10,s1,,",        # 10 empty fields after the last: a whole row
    "2019-10-01 00:00:08 UTC,cart,1,2,,,0,11,s3",                 # 11 zero price; brand + code from product 1
    "2019-10-01 00:00:08 UTC,cart,7,2,,,3,11,s3",                 # 12 category 2: two brands (unknown), one code
    "2019-10-01 00:00:09 UTC,view,8,9,c.d,solo,4,12,s4",          # 13
    "2019-10-01 00:00:09 UTC,view,9,9,,,4,12,s4",                 # 14 brand and code from category 9
    "2019-10-01 00:00:10 UTC,view,8.0,9,c.d,solo,4,1.2e1,s4",     # 15 ids written as decimals: 8 and 12
    "2019-09-30 23:59:59 UTC,view,8,9,c.d,solo,4,12,s5",          # 16 out of time order: sorted first
    "2019-10-01 00:00:00 UTC,purchase,8,9,c.d,solo,4,12,s6",      # 17 ties line 1: after it (input order)
    "2019-10-01 00:00:0",                                         # 18 truncated last line (no newline)
]


def _run_both(paths: list, tmp_path: Path, spec, spark_paths: list | None = None,
              params: IngestParams = IngestParams(max_bad_fraction=0.5)) -> tuple[dict, dict, pa.Table, pa.Table]:
    """Both engines' quality.json and events table (Spark may be given the inputs as URIs)."""
    duck, spark = tmp_path / "duck", tmp_path / "spark"
    duck.mkdir(parents=True)
    spark.mkdir()
    returned = ingest_files(paths, duck, params), ingest_files_spark(spark_paths or paths, spark, params, spec)
    assert sorted(p.name for p in spark.iterdir()) == ["events.parquet", "quality.json"]  # no scratch left
    reports = [json.loads((d / "quality.json").read_text()) for d in (duck, spark)]
    assert reports[1] == returned[1]
    tables = [pq.read_table(d / "events.parquet") for d in (duck, spark)]
    assert pq.read_schema(spark / "events.parquet").remove_metadata().equals(S.ARROW_SCHEMA)
    assert pq.ParquetFile(spark / "events.parquet").metadata.row_group(0).num_rows == min(tables[1].num_rows,
                                                                                          1_000_000)
    return reports[0], reports[1], tables[0], tables[1]


def _same(duck: dict, spark: dict, a: pa.Table, b: pa.Table) -> None:
    """Reports equal but for the samples' line and error text (Spark has no line numbers), tables row for row."""
    strip = lambda r: {**r, "unparsable_samples": [{k: s[k] for k in ("file", "content")}  # noqa: E731
                                                   for s in r["unparsable_samples"]]}
    assert strip(duck) == strip(spark)
    assert all(s["line"] is None for s in spark["unparsable_samples"])
    loose = lambda t: t.cast(pa.schema([f.with_nullable(True) for f in t.schema]))  # noqa: E731 - writers differ
    assert loose(b).equals(loose(a)), (a.to_pandas().head(), b.to_pandas().head())


def _digest(t: pa.Table) -> str:
    """A hash of the table's content in row order."""
    rows = pd.util.hash_pandas_object(t.to_pandas(), index=False).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()


def test_hand_made_file_known_answers_as_duckdb(tmp_path, spark_spec):
    src = tmp_path / "t.csv"
    src.write_text("\n".join([HEADER, *LINES]))
    duck, spark, a, b = _run_both([src], tmp_path, spark_spec)
    _same(duck, spark, a, b)
    assert spark["rows_read"] == 18 and spark["rows_kept"] == 9
    assert spark["dropped"] == {"unparsable": 5, "invalid_value": 2, "no_session": 1, "duplicate": 1}
    assert spark["unparsable_by_reason"] == {"missing_columns": 2, "too_many_columns": 1, "cast_event_time": 1,
                                             "cast_product_id": 1}
    assert [s["content"] for s in spark["unparsable_samples"]] == [LINES[i] for i in (2, 3, 4, 5, 17)]
    assert spark["filled"] == {"brand_from_product": 1, "brand_from_category": 1, "brand_unknown": 1,
                               "category_code_from_product": 1, "category_code_from_category": 2,
                               "category_code_unknown": 0}
    assert spark["price_zero_kept"] == 1
    df = b.to_pandas()
    assert df[S.USER_SESSION].tolist() == ["s5", "s1", "s6", "s1", "s3", "s3", "s4", "s4", "s4"]
    assert df[S.BRAND].tolist()[4:6] == ["br,x", S.UNKNOWN_BRAND] and df[S.CATEGORY_CODE].tolist()[5] == "a.b"
    assert df[S.BRAND].tolist()[7] == "solo" and df[S.PRODUCT_ID].tolist()[-1] == 8 and df[S.USER_ID].tolist()[-1] == 12


def test_odd_inputs_and_uris_as_duckdb(tmp_path, spark_spec):
    """Several files out of time order with awkward names, a .gz and a .zip; then the plain ones as file:// URIs
    and as a glob (samples then name the file Spark read)."""
    d = tmp_path / "in dir"
    d.mkdir()
    late, early = [HEADER, *LINES[12:15]], [HEADER, *LINES[:2], "oops,1", *LINES[10:12]]
    (d / "a [1] ä.csv").write_text("\n".join(late) + "\n")
    (d / "b:c.csv").write_text("\n".join(early) + "\n")
    (d / "c.csv.gz").write_bytes(gzip.compress(("\n".join([HEADER, LINES[15]]) + "\n").encode()))
    with zipfile.ZipFile(d / "d.zip", "w") as z:
        z.writestr("inner.csv", "\n".join([HEADER, LINES[16], LINES[9]]) + "\n")
    files = [d / "a [1] ä.csv", d / "b:c.csv", d / "c.csv.gz", d / "d.zip"]
    _same(*_run_both(files, tmp_path / "local", spark_spec))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.csv").write_text("\n".join(late) + "\n")
    (plain / "b.csv").write_text("\n".join(early) + "\n")
    local = [plain / "a.csv", plain / "b.csv"]
    uris = [p.resolve().as_uri() for p in local]
    duck, spark, a, b = _run_both(local, tmp_path / "uri", spark_spec, uris)
    assert spark["files"] == uris and spark["unparsable_samples"][0]["file"] == uris[1]  # named as given
    duck["files"], duck["unparsable_samples"][0]["file"] = uris, uris[1]
    _same(duck, spark, a, b)
    glob = [f"file://{plain.resolve()}/*.csv"]
    duck, spark, a, b = _run_both(local, tmp_path / "glob", spark_spec, glob)
    assert spark["files"] == glob and spark["unparsable_samples"][0]["file"].endswith("/plain/b.csv")
    duck["files"], duck["unparsable_samples"][0]["file"] = glob, spark["unparsable_samples"][0]["file"]
    _same(duck, spark, a, b)


def test_mostly_garbage_is_refused(tmp_path, spark_spec):
    src = tmp_path / "bad.csv"
    src.write_text("\n".join([HEADER, LINES[0]] + ["garbage,line"] * 5))
    with pytest.raises(IngestError, match=r"bad.csv: 5 of 6 rows cannot be parsed \(more than 5%\); first: cast "
                                          r"\(event_time\) -- content: 'garbage,line'"):
        ingest_files_spark([src], tmp_path, spec=spark_spec)
    with pytest.raises(IngestError, match="5 of 6 rows cannot be parsed"):
        ingest_files([src], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_unreadable_inputs_one_line_errors(tmp_path, spark_spec):
    empty, broken = tmp_path / "empty.csv", tmp_path / "broken.csv.gz"
    empty.write_text("")
    data = gzip.compress(("\n".join([HEADER] + [LINES[0]] * 50_000) + "\n").encode())
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="the file is empty"):
        ingest_files_spark([empty], tmp_path, spec=spark_spec)
    with pytest.raises(IngestError, match=r"broken.csv.gz: cannot be read as a REES46 CSV: .*EOFException"):
        ingest_files_spark([broken], tmp_path, spec=spark_spec)
    with pytest.raises(IngestError, match="nope.csv: no such file"):
        ingest_files_spark([f"file://{tmp_path}/nope.csv"], tmp_path, spec=spark_spec)
    semi = tmp_path / "semi.csv"
    semi.write_text("a;b\n1;2\n")
    with pytest.raises(IngestError, match="semi.csv: the header is semicolon-separated"):
        ingest_files_spark([semi.as_uri()], tmp_path, spec=spark_spec)


# Where the parsers disagree (exotic for REES46 files, whose timestamps read '2019-10-01 00:00:00 UTC'); each line's
# session names it. Both engines agree on every other line of these files.
EDGE_TIMES = {"lower_utc": "2019-10-01 00:00:00 utc", "hour_24": "2019-10-01 24:00:00",  # DuckDB only
              "glued_utc": "2019-10-01 00:00:00UTC", "spaced_z": "2019-10-01 00:00:00 Z",  # Spark only
              "spaced_offset": "2019-10-01 00:00:00 +03:00",
              "iso_z": "2019-10-01T00:00:00Z", "offset": "2019-10-01 00:00:00+03", "zone": "2019-10-01 00:00 GMT"}  # zone: DuckDB only


def test_known_edge_differences(tmp_path, spark_spec):
    times = tmp_path / "times.csv"
    times.write_text("\n".join([HEADER] + [f"{t},view,1,2,a.b,br,1.5,10,{s}" for s, t in EDGE_TIMES.items()]
                               + ["2019-10-01 00:00:00 UTC,view,0x10,2,a.b,br,1_000.5,10,hex_and_underscore"]) + "\n")
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("\n".join([HEADER, f"{LINES[12][:-2]}ok", '2019-10-01 00:00:09 UTC,view,8,9,"c\nd",b,4,12,multiline',
                                 '2019-10-01 00:00:09 UTC,view,8,9,"c"d,b,4,12,quote_then_text',
                                 '2019-10-01 00:00:09 UTC,view,8,9,"open,b,4,12,open_quote', f"{LINES[12][:-2]}after"]))
    kept = {}
    for src in (times, quotes):
        out = tmp_path / src.stem
        out.mkdir()
        duck, spark, a, b = _run_both([src], out, spark_spec, params=IngestParams(max_bad_fraction=1.0))
        kept[src.stem] = (set(a.column(S.USER_SESSION).to_pylist()), set(b.column(S.USER_SESSION).to_pylist()))
    duck_only, spark_only = (kept["times"][0] - kept["times"][1]), (kept["times"][1] - kept["times"][0])
    assert duck_only == {"lower_utc", "hour_24", "zone", "hex_and_underscore"}
    assert spark_only == {"glued_utc", "spaced_z", "spaced_offset"}
    assert {"iso_z", "offset"} <= kept["times"][0] & kept["times"][1]
    # DuckDB: a quoted line break is data, "c"d is unparsable, an open quote swallows the rest of the file
    assert kept["quotes"][0] == {"ok", "multiline"}
    assert kept["quotes"][1] == {"ok", "quote_then_text", "after"}
    # bytes that are not UTF-8: both refuse, with the same advice; a real U+FFFD is refused by Spark only
    latin, fffd = tmp_path / "latin.csv", tmp_path / "fffd.csv"
    latin.write_bytes(f"{HEADER}\n{LINES[12][:-12]}caf\xe9,4,12,s4\n".encode("latin-1"))
    fffd.write_text(f"{HEADER}\n{LINES[12][:-12]}caf\ufffd,4,12,s4\n", encoding="utf-8")
    for engine in (ingest_files, lambda p, o: ingest_files_spark(p, o, spec=spark_spec)):
        with pytest.raises(IngestError, match="latin.csv: .*non-UTF-8 bytes; re-encode the file as UTF-8"):
            engine([latin], tmp_path)
    assert ingest_files([fffd], tmp_path)["rows_kept"] == 1
    with pytest.raises(IngestError, match="fffd.csv: a line has non-UTF-8 bytes"):
        ingest_files_spark([fffd], tmp_path, spec=spark_spec)


@pytest.mark.slow
def test_real_head_same_events_and_report(tmp_path, spark_spec, head_csv):
    duck, spark, a, b = _run_both([head_csv], tmp_path, spark_spec, params=IngestParams())
    _same(duck, spark, a, b)
    assert spark["rows_read"] == duck["rows_read"] and b.num_rows == a.num_rows == spark["rows_kept"]
    assert spark["dropped"]["unparsable"] == 1  # the truncated last line
    assert _digest(b) == _digest(a)


@pytest.mark.slow
def test_demo_store_same_events_and_report(tmp_path, spark_spec):
    from recsys.build import build_demo_input
    src = build_demo_input(tmp_path / "raw", events=40_000, seed=7)
    duck, spark, a, b = _run_both([src], tmp_path, spark_spec, params=IngestParams())
    _same(duck, spark, a, b)
    assert _digest(b) == _digest(a)
    assert spark["dropped"]["duplicate"] > 0 and spark["filled"]["brand_from_category"] > 0
