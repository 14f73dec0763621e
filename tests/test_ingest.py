"""Ingest: each cleaning rule on tiny hand-made files with known answers, and every bad input."""
from __future__ import annotations

import gzip
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys import schema as S
from recsys.artifacts import events_path, read_manifest
from recsys.ingest.reader import IngestError, ingest_files
from recsys.ingest.stage import build_events, load_quality

HEADER = ",".join(S.EVENT_COLUMNS)
REPO = Path(__file__).resolve().parents[1]


def row(t="00:00:00", ev="view", pid=1, cat=100, code="electronics.smartphone", brand="apple", price="10.00",
        uid=5, sess="s1") -> str:
    return f"2019-10-01 {t} UTC,{ev},{pid},{cat},{code},{brand},{price},{uid},{sess}"


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def ingest(tmp_path: Path, rows: list[str]) -> tuple[pd.DataFrame, dict]:
    out = tmp_path / "out"
    out.mkdir()
    report = ingest_files([write(tmp_path / "in.csv", rows)], out)
    return pd.read_parquet(out / "events.parquet"), report


def accounted(report: dict) -> bool:
    return report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values())


def test_brand_filled_from_same_product(tmp_path):
    df, rep = ingest(tmp_path, [row("00:00:01"), row("00:00:02", brand="")])
    assert list(df["brand"]) == ["apple", "apple"]
    assert rep["filled"]["brand_from_product"] == 1 and rep["filled"]["brand_unknown"] == 0


def test_brand_from_category_only_when_one_known_brand(tmp_path):
    rows = [row("00:00:01", pid=3, cat=100, brand="samsung"),       # category 100: one brand
            row("00:00:02", pid=2, cat=100, brand=""),              # -> samsung
            row("00:00:03", pid=4, cat=200, brand="lg"), row("00:00:04", pid=5, cat=200, brand="sony"),
            row("00:00:05", pid=6, cat=200, brand=""),              # category 200 has two brands -> unknown
            row("00:00:06", pid=7, cat=300, brand="")]              # nothing known -> unknown
    df, rep = ingest(tmp_path, rows)
    brands = dict(zip(df["product_id"], df["brand"]))
    assert brands[2] == "samsung" and brands[6] == S.UNKNOWN_BRAND and brands[7] == S.UNKNOWN_BRAND
    assert rep["filled"]["brand_from_category"] == 1 and rep["filled"]["brand_unknown"] == 2


def test_category_code_filled_product_then_category_then_unknown(tmp_path):
    rows = [row("00:00:01", pid=1, cat=100, code="kids.toys"), row("00:00:02", pid=1, cat=100, code=""),
            row("00:00:03", pid=2, cat=100, code=""),           # from category 100's only code
            row("00:00:04", pid=3, cat=900, code="")]           # unknown
    df, rep = ingest(tmp_path, rows)
    codes = list(df.sort_values("event_time")["category_code"])
    assert codes == ["kids.toys", "kids.toys", "kids.toys", S.UNKNOWN_CATEGORY]
    f = rep["filled"]
    assert (f["category_code_from_product"], f["category_code_from_category"], f["category_code_unknown"]) == (1, 1, 1)


def test_rows_without_session_and_exact_duplicates_dropped(tmp_path):
    rows = [row("00:00:01"), row("00:00:01"), row("00:00:01"), row("00:00:02", sess=""), row("00:00:03", uid=6)]
    df, rep = ingest(tmp_path, rows)
    assert len(df) == 2
    assert rep["dropped"]["duplicate"] == 2 and rep["dropped"]["no_session"] == 1
    assert accounted(rep)


def test_unparsable_rows_skipped_counted_and_shown(tmp_path):
    rows = [row(f"00:00:{i:02d}", uid=i) for i in range(60)]
    rows += ["2019-10-01 00:01:00 UTC,view,1,100,x,apple,10.00,5",        # 8 fields (truncated)
             row("00:01:01").replace("2019-10-01 00:01:01 UTC", "yesterday"),  # bad timestamp
             row("00:01:02", price="ten")]                                  # bad number
    df, rep = ingest(tmp_path, rows)
    assert len(df) == 60 and rep["dropped"]["unparsable"] == 3 and accounted(rep)
    assert [s["line"] for s in rep["unparsable_samples"]] == [62, 63, 64]
    assert "yesterday" in rep["unparsable_samples"][1]["content"]


def test_prices_zero_kept_negative_and_bad_event_type_dropped(tmp_path):
    rows = [row("00:00:01", price="0"), row("00:00:02", price="-5.00", uid=7),
            row("00:00:03", ev="wishlist", uid=8), row("00:00:04", ev="purchase", uid=9)]
    df, rep = ingest(tmp_path, rows)
    assert sorted(df["user_id"]) == [5, 9]
    assert rep["dropped"]["invalid_value"] == 2 and rep["price_zero_kept"] == 1 and accounted(rep)


@pytest.mark.parametrize("price", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_non_finite_prices_are_invalid_values(tmp_path, price):
    """A nan price used to pass the events stage and crash the aggregates stage (DuckDB ConversionException)."""
    df, rep = ingest(tmp_path, [row("00:00:01"), row("00:00:02", price=price, uid=7)])
    assert df["user_id"].tolist() == [5]
    assert rep["dropped"]["invalid_value"] == 1 and accounted(rep)


@pytest.mark.parametrize("shape", ["pandas_index", "named_extra_first", "extra_between", "extra_after", "two_blank"])
def test_extra_and_unnamed_columns_are_ignored(tmp_path, shape):
    """A CSV written by pandas with its index (a leading blank column) and any other extra columns, named or not,
    before, between or after the nine, give the same events as the plain file."""
    cols = list(S.EVENT_COLUMNS)
    base = [row("00:00:01"), row("00:00:02", ev="purchase", uid=7, brand="", price="3.5")]
    values = [r.split(",") for r in base]
    at, names = {"pandas_index": (0, [""]), "named_extra_first": (0, ["source"]), "extra_between": (3, ["note"]),
                 "extra_after": (9, ["Unnamed: 9"]), "two_blank": (0, ["", ""])}[shape]
    header = cols[:at] + names + cols[at:]
    lines = [",".join(v[:at] + [str(j) for j in range(len(names))] + v[at:]) for v in values]
    out = tmp_path / "out"
    out.mkdir()
    report = ingest_files([write(tmp_path / "in.csv", lines, ",".join(header))], out)
    df = pd.read_parquet(out / "events.parquet")
    plain, _ = ingest(tmp_path / "plain" if (tmp_path / "plain").mkdir() is None else tmp_path, base)
    assert list(df.columns) == list(S.EVENT_COLUMNS)
    pd.testing.assert_frame_equal(df, plain)
    assert report["rows_kept"] == 2 and accounted(report)


def test_output_follows_contract_and_is_sorted(tmp_path):
    df, _ = ingest(tmp_path, [row("00:00:09", uid=1), row("00:00:01", uid=2), row("00:00:05", uid=3)])
    S.validate_events(df)
    assert df["event_time"].is_monotonic_increasing
    assert df["event_time"].iloc[0] == pd.Timestamp("2019-10-01 00:00:01", tz="UTC")


@pytest.mark.parametrize("shuffled", [False, True])
def test_many_row_groups_keep_order_drop_duplicates_and_fill(tmp_path, monkeypatch, shuffled):
    """The streaming pass over several row groups (2,048-row groups here): duplicates whose copies sit in other
    row groups are dropped, fills use the whole file, the output keeps the input order (time-ordered input) or is
    sorted by time with ties in input order (unordered input). The known answer comes from pandas."""
    import random
    import recsys.ingest.reader as ingest_mod
    monkeypatch.setattr(ingest_mod, "ROW_GROUP", 2048)
    rnd = random.Random(5)
    rows = []
    for i in range(9000):
        pid, sec = rnd.randrange(40), i // 2     # two different events per second: ties keep the input order
        rows.append(row(f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}", pid=pid, cat=100 + pid % 4,
                        brand="" if rnd.random() < 0.3 else f"b{pid}", uid=rnd.randrange(300),
                        sess=f"s{rnd.randrange(900)}"))
    for j in range(0, 8000, 397):           # exact copies, some right after the original, some far later
        rows.insert(j + (1 if j % 2 else 4000), rows[j])
    if shuffled:
        rnd.shuffle(rows)
    df, rep = ingest(tmp_path, rows)
    ref = pd.read_csv(tmp_path / "in.csv", keep_default_na=False).drop_duplicates()
    missing_brand = int((ref["brand"] == "").sum())
    ref["brand"] = ["b" + str(pid) for pid in ref["product_id"]]   # every product's one known brand
    ref["event_time"] = pd.to_datetime(ref["event_time"].str.replace(" UTC", ""), utc=True)
    ref = ref.sort_values("event_time", kind="stable")
    assert pq.ParquetFile(tmp_path / "out" / "events.parquet").metadata.num_row_groups > 1
    assert rep["dropped"]["duplicate"] == len(rows) - len(ref) > 0 and accounted(rep)
    assert list(df["event_time"]) == list(ref["event_time"])
    assert list(df["user_session"]) == list(ref["user_session"]) and list(df["brand"]) == list(ref["brand"])
    assert rep["filled"]["brand_from_product"] == missing_brand and rep["filled"]["brand_unknown"] == 0


def test_category_id_keeps_full_int64_precision(tmp_path):
    df, _ = ingest(tmp_path, [row(cat=2053013552326770905)])
    assert int(df["category_id"].iloc[0]) == 2053013552326770905


def test_gz_zip_and_several_files(tmp_path):
    plain = write(tmp_path / "a.csv", [row("00:00:01", uid=1)])
    gz = tmp_path / "b.csv.gz"
    gz.write_bytes(gzip.compress(("\n".join([HEADER, row("00:00:02", uid=2)]) + "\n").encode()))
    zp = tmp_path / "c.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("2019-Nov.csv", "\n".join([HEADER, row("00:00:03", uid=3)]) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    rep = ingest_files([plain, gz, zp], out)
    assert rep["rows_kept"] == 3 and len(rep["files"]) == 3


def test_real_head_accounts_for_every_line(head_csv, tmp_path):
    manifest, built = build_events(tmp_path, [head_csv])
    rep = load_quality(tmp_path)
    n_lines = sum(1 for _ in open(head_csv, "rb")) - 1
    assert built and rep["rows_read"] == n_lines == 17_435 and accounted(rep)
    assert rep["dropped"]["unparsable"] == 1  # the truncated last line
    assert rep["unparsable_samples"][0]["line"] == 17_436
    assert manifest["rows"]["events"] == rep["rows_kept"]
    assert build_events(tmp_path, [head_csv])[1] is False  # unchanged input: stage skipped


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[Path], str]]:
    good = [row(f"00:00:{i:02d}", uid=i) for i in range(5)]
    latin = tmp / "latin.csv"
    latin.write_bytes(("\n".join([HEADER, *good]) + "\n").encode() + row(brand="caf\xe9").encode("latin1") + b"\n")
    swapped = HEADER.replace("category_code,brand", "brand,category_code")  # same columns, other order
    other = write(tmp / "other.csv", good, header=swapped)
    return {
        "missing column": ([write(tmp / "m.csv", ["x"], header=HEADER.replace(",price", ""))], "missing required column(s) price"),
        "wrong delimiter": ([write(tmp / "semi.csv", [r.replace(",", ";") for r in good], HEADER.replace(",", ";"))], "semicolon-separated"),
        "not a csv": ([write(tmp / "prose.csv", ["just prose"], header="hello world")], "not a REES46 CSV"),
        "binary": ([tmp / "bin.csv"], "binary"),
        "empty": ([tmp / "empty.csv"], "empty"),
        "non-utf8": ([latin], "non-UTF-8"),
        "bad timestamps": ([write(tmp / "ts.csv", [r.replace("2019-10-01", "01/10/2019") for r in good])], "cannot be parsed"),
        "bad prices": ([write(tmp / "price.csv", [row(f"00:00:0{i}", price="n/a") for i in range(5)])], "cannot be parsed"),
        "header differs": ([write(tmp / "ok.csv", good), other], "header differs"),
        "no such path": ([tmp / "nope.csv"], "no such file"),
    }


@pytest.fixture()
def built_root(tmp_path) -> Path:
    root = tmp_path / "art"
    build_events(root, [write(tmp_path / "good.csv", [row("00:00:01"), row("00:00:02", uid=9)])])
    return root


@pytest.mark.parametrize("case", ["missing column", "wrong delimiter", "not a csv", "binary", "empty", "non-utf8",
                                  "bad timestamps", "bad prices", "header differs", "no such path"])
def test_bad_input_clear_error_and_earlier_artifacts_intact(case, tmp_path, built_root):
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "empty.csv").write_bytes(b"")
    paths, expected = _bad_inputs(tmp_path)[case]
    before = read_manifest(built_root, "events")
    with pytest.raises(IngestError) as err:
        build_events(built_root, paths)
    msg = str(err.value)
    assert expected in msg and "\n" not in msg
    assert read_manifest(built_root, "events") == before
    assert len(pd.read_parquet(events_path(built_root))) == 2
    assert not [p for p in built_root.iterdir() if p.name.startswith(".tmp")]


def test_cli_bad_input_one_line_nonzero_exit(tmp_path):
    bad = write(tmp_path / "m.csv", ["x"], header=HEADER.replace(",user_id", ""))
    proc = subprocess.run([sys.executable, "-m", "recsys", "ingest", str(bad), "--artifacts", str(tmp_path / "a")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {bad}: missing required column(s) user_id (header has: event_time, event_type, "
                      f"product_id, category_id, category_code, brand, price, user_session)"]
