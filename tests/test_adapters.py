"""Adapters: RetailRocket and UCI Online Retail files, hand-made, through detection, mapping and the build."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys import schema as S
from recsys.ingest.adapters import load_product_names
from recsys.ingest.formats import AdapterError, detect_format
from recsys.ingest.uci import stock_code_id
from recsys.ingest.stage import build_events, load_quality
from tests.stores import (NAMED, RR_EVENTS, T0, UCI_ROWS, events_of, write_named_uci, write_uci_csv,
                          write_uci_xlsx)


def test_detection_from_the_header(rr_dir, tmp_path, head_csv_or_none):
    assert detect_format([rr_dir / "events.csv"]) == "retailrocket"
    assert detect_format([rr_dir / "events.csv", rr_dir / "category_tree.csv"]) == "retailrocket"
    assert detect_format([write_uci_csv(tmp_path / "u.csv")]) == "uci"
    assert detect_format([write_uci_xlsx(tmp_path / "u.xlsx")]) == "uci"
    if head_csv_or_none:
        assert detect_format([head_csv_or_none]) == "rees46"
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    assert detect_format([other]) == "rees46"  # unknown: left to the REES46 checks and their messages
    with pytest.raises(AdapterError, match="RetailRocket"):
        detect_format([rr_dir / "events.csv", other])
    with pytest.raises(AdapterError, match="needs the RetailRocket events.csv"):
        detect_format([rr_dir / "category_tree.csv"])


@pytest.fixture()
def head_csv_or_none():
    from tests.conftest import HEAD_CSV
    return HEAD_CSV if HEAD_CSV.exists() else None


def test_retailrocket_mapping_sessions_categories_and_counts(rr_dir, tmp_path):
    root = tmp_path / "art"
    build_events(root, [rr_dir / "events.csv"])  # properties and tree found next to events.csv
    ev = events_of(root)
    q = load_quality(root)
    assert q["format"] == "retailrocket"
    assert q["rows_read"] == 8 and q["rows_kept"] == 5
    assert q["dropped"] == {"unparsable": 1, "invalid_value": 1, "no_session": 0, "duplicate": 1}
    assert len(q["files"]) == 3
    v7 = ev[ev.user_id == 7].sort_values("event_time")
    assert v7.event_type.tolist() == ["view", "cart", "purchase", "view"]
    # 0 -> 29 min: same session; 29 -> 60 min is a 31-minute gap: new session; 60 -> 61: same
    assert v7.user_session.tolist() == ["7-1", "7-1", "7-2", "7-2"]
    assert v7.event_time.iloc[0] == pd.Timestamp(T0, unit="ms", tz="UTC")
    item = ev.drop_duplicates("product_id").set_index("product_id")
    assert item.loc[100, "category_id"] == 1091 and item.loc[100, "category_code"] == "1482.1338.1091"  # latest
    assert item.loc[200, "category_code"] == "1482.1338"
    assert item.loc[300, "category_code"] == S.UNKNOWN_CATEGORY and item.loc[300, "category_id"] == 0
    assert (ev.brand == S.UNKNOWN_BRAND).all() and (ev.price == 0).all()


def test_retailrocket_without_properties_says_there_are_no_categories(tmp_path):
    (tmp_path / "events.csv").write_text(RR_EVENTS)
    root = tmp_path / "art"
    build_events(root, [tmp_path / "events.csv"])
    q = load_quality(root)
    assert any("no categories" in n for n in q["notes"])
    assert (events_of(root).category_code == S.UNKNOWN_CATEGORY).all()


@pytest.mark.parametrize("writer", [write_uci_csv, write_uci_xlsx], ids=["csv", "xlsx"])
def test_uci_cancellations_missing_customers_and_counts(writer, tmp_path):
    path = writer(tmp_path / ("retail.csv" if writer is write_uci_csv else "retail.xlsx"))
    root = tmp_path / "art"
    build_events(root, [path])
    q = load_quality(root)
    assert q["format"] == "uci"
    assert q["rows_read"] == 8 and q["rows_kept"] == 3
    assert q["dropped"] == {"unparsable": 1, "cancelled": 1, "no_customer": 1, "invalid_value": 1, "duplicate": 1}
    ev = events_of(root)
    assert (ev.event_type == S.PURCHASE).all()
    assert sorted(ev.user_session.unique()) == ["536365", "536366"]  # the invoice is the session
    assert sorted(ev.user_id.unique()) == [17850, 17851]
    assert set(ev.product_id) == {stock_code_id("85123A"), 71053, 22633}
    assert ev.event_time.min() == pd.Timestamp("2010-12-01 08:26", tz="UTC")
    names = pd.read_parquet(root / "events" / "item_names.parquet").set_index("product_id")
    assert names.loc[stock_code_id("85123A"), "stock_code"] == "85123A"
    assert names.loc[71053, "name"] == "WHITE METAL LANTERN"


@pytest.fixture()
def named_store(tmp_path) -> Path:
    root = tmp_path / "art"
    build_events(root, [write_named_uci(tmp_path / "retail.csv")])
    return root


def test_product_names_load_from_the_events_stage(named_store):
    names = load_product_names(named_store)
    assert list(names.columns) == ["product_id", "stock_code", "name"] and names["product_id"].is_monotonic_increasing
    by_code = names.set_index("stock_code")["name"]
    # the most frequent Description wins over a stray "?" and empty ones
    assert by_code["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER" and by_code["71053"] == "WHITE METAL LANTERN"
    assert set(names["product_id"]) == {stock_code_id(c) for c, _, _ in NAMED}


def test_a_store_without_names_has_none(tmp_path, rr_dir):
    assert load_product_names(tmp_path / "never-built") is None
    build_events(tmp_path / "rr", [rr_dir / "events.csv"])
    assert load_product_names(tmp_path / "rr") is None


@pytest.mark.parametrize("damage", ["garble", "truncate", "delete"])
def test_a_damaged_names_file_means_no_names_and_a_warning(named_store, damage, caplog):
    path = named_store / "events" / "item_names.parquet"
    if damage == "garble":  # same size, other bytes: only the hash tells
        data = bytearray(path.read_bytes())
        data[len(data) // 2:len(data) // 2 + 16] = b"\xff" * 16
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    else:
        path.unlink()
    with caplog.at_level("WARNING", logger="recsys.ingest.adapters"):
        assert load_product_names(named_store) is None
    assert "item_names.parquet" in caplog.text and "labels fall back" in caplog.text


def test_stock_codes_get_stable_distinct_ids():
    assert stock_code_id("71053") == 71053
    assert stock_code_id("85123A") == stock_code_id(" 85123A ") != stock_code_id("85123B")
    assert stock_code_id("POST") > 10 ** 16


def test_uci_with_no_usable_row_is_a_clear_error(tmp_path):
    path = write_uci_csv(tmp_path / "r.csv", [UCI_ROWS[4], UCI_ROWS[5]])
    with pytest.raises(AdapterError, match="no row survived"):
        build_events(tmp_path / "art", [path])
    assert not (tmp_path / "art" / "events").exists()


def test_an_xlsx_that_is_not_uci_is_rejected(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    wb.active.append(["a", "b"])
    wb.save(tmp_path / "x.xlsx")
    with pytest.raises(AdapterError, match="UCI Online Retail"):
        detect_format([tmp_path / "x.xlsx"])


def test_a_store_without_views_or_categories_builds_and_says_so(uci_artifacts):
    from recsys.evaluation.stage import load_evaluation
    res = load_evaluation(uci_artifacts)
    notes = " ".join(res.summary["notes"])
    assert "no view events" in notes and "no categories" in notes
    assert set(res.results["targets"]) == {"buy"}
    assert "diversity" not in set(res.results["metric"])
    assert res.curve.empty
    assert (res.results["value"].dropna().between(0, 1) | (res.results["metric"] == "novelty")).all()


def test_the_evaluation_page_explains_a_store_without_views_or_categories(uci_artifacts, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(uci_artifacts))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "no view events" in infos and "no categories" in infos
    assert len(at.get("plotly_chart")) == 1  # the bars; no curve without categories


@pytest.mark.parametrize("header,fmt,missing", [
    ("InvoiceNo,StockCode,Description,InvoiceDate,UnitPrice,CustomerID,Country", "UCI Online Retail", "Quantity"),
    ("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Country", "UCI Online Retail", "CustomerID"),
    ("timestamp,visitorid,event,itemid", "RetailRocket events", "transactionid"),
    ("timestamp,visitorid,itemid,transactionid", "RetailRocket events", "event"),
])
def test_a_store_file_with_a_missing_column_names_its_format_and_the_column(tmp_path, header, fmt, missing):
    """Not the REES46 column list: the message says which format the file looks like and what it lacks."""
    path = tmp_path / "x.csv"
    path.write_text(header + "\n" + ",".join("1" for _ in header.split(",")) + "\n")
    with pytest.raises(AdapterError) as err:
        build_events(tmp_path / "art", [path])
    msg = str(err.value)
    assert f"looks like a {fmt} file" in msg and f"no column(s) {missing};" in msg and "event_time" not in msg
    assert not (tmp_path / "art" / "events").exists()


def test_a_rees46_file_with_a_missing_column_still_gets_the_rees46_message(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("event_time,event_type,product_id,category_id,category_code,brand,price,user_id\n")
    with pytest.raises(Exception, match="user_session"):
        build_events(tmp_path / "art", [path])


def test_a_zipped_retailrocket_store_reports_its_own_files_not_the_unpacked_copies(rr_dir, tmp_path):
    import zipfile
    zipped = tmp_path / "events.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(rr_dir / "events.csv", "events.csv")
    others = [rr_dir / "category_tree.csv", *sorted(rr_dir.glob("item_properties*.csv"))]
    root = tmp_path / "art"
    build_events(root, [zipped, *others])
    q = load_quality(root)
    assert q["rows_read"] == 8 and q["rows_kept"] == 5  # the same store as unzipped
    assert q["files"] == [str(p) for p in [zipped, *others[1:], others[0]]]  # events, properties, tree
    assert [s["file"] for s in q["unparsable_samples"]] == [str(zipped)]
    assert not list((root / "raw").glob(".unzipped-*"))  # the unpacked copy is gone
