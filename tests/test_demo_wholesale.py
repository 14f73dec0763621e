"""The wholesale demo profile: deterministic, the real UCI Online Retail format, ingestible, re-bought staples."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.ingest.adapters import ingest_adapted
from recsys.ingest.formats import UCI_COLUMNS, detect_format
from recsys.ingest.uci import stock_code_id
from recsys.cli import main
from recsys.ingest.demo_wholesale import repeat_share, write_wholesale_rees46, write_wholesale_uci
from recsys.ingest.wholesale_log import build_wholesale_log
from recsys.ingest.stage import build_events, load_quality

LINES, SEED = 5_000, 11
SIZES = {"customers": 60, "products": 400}
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


@pytest.fixture(scope="module")
def uci(tmp_path_factory) -> tuple[Path, dict, pd.DataFrame]:
    """One wholesale UCI CSV, its stats and its rows as strings (empty fields stay empty)."""
    path = tmp_path_factory.mktemp("wholesale") / "wholesale.csv"
    stats = write_wholesale_uci(path, lines=LINES, seed=SEED, **SIZES)
    return path, stats, pd.read_csv(path, dtype=str, keep_default_na=False)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c, r1, r2 = (tmp_path / f"{n}.csv" for n in ("a", "b", "c", "r1", "r2"))
    write_wholesale_uci(a, lines=3_000, seed=3)
    write_wholesale_uci(b, lines=3_000, seed=3)
    write_wholesale_uci(c, lines=3_000, seed=4)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    write_wholesale_rees46(r1, lines=3_000, seed=3)
    write_wholesale_rees46(r2, lines=3_000, seed=3)
    assert r1.read_bytes() == r2.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "c.csv", "r1.csv", "r2.csv"]  # no temp


def test_exact_uci_format(uci):
    path, stats, df = uci
    assert path.read_text().splitlines()[0] == HEADER and list(df.columns) == list(UCI_COLUMNS)
    assert len(df) == LINES == stats["lines"]
    assert df.InvoiceNo.str.fullmatch(r"C?\d{6}").all()
    assert df.InvoiceDate.str.fullmatch(r"\d{1,2}/\d{1,2}/20\d\d \d{1,2}:\d\d").all()  # like "12/1/2010 8:26"
    assert df.StockCode.str.fullmatch(r"\d{5}[A-Z]?|POST").all()
    assert df.Description.str.fullmatch(r"[A-Z0-9][A-Z0-9 \-]*").all()
    qty, price = df.Quantity.astype(int), df.UnitPrice.astype(float)
    cancelled = df.InvoiceNo.str.startswith("C")
    assert (qty[cancelled] < 0).all() and (qty[~cancelled] > 0).all() and (price > 0).all()
    assert 0.005 < cancelled.mean() < 0.05
    no_customer = df.CustomerID == ""
    assert 0 < no_customer.mean() < 0.15 and df.CustomerID[~no_customer].str.fullmatch(r"\d{5}").all()
    assert (df.Country == "United Kingdom").mean() > 0.7
    assert stats["cancelled_lines"] == cancelled.sum() and stats["no_customer_lines"] == no_customer.sum()
    assert stats["invoices"] == df.InvoiceNo.nunique() and stats["products"] == df.StockCode.nunique()
    dates = pd.to_datetime(df.InvoiceDate, format="%m/%d/%Y %H:%M")
    numbers = df.InvoiceNo.str.lstrip("C").astype(int)
    assert numbers.is_monotonic_increasing and dates[~cancelled].is_monotonic_increasing  # numbered in time order
    assert dates.dt.hour.between(7, 20).all() and dates.min() >= pd.Timestamp("2010-12-01")
    assert (dates.dt.month == 11).mean() > (dates.dt.month == 2).mean()  # the busy pre-holiday month


def test_detected_as_uci_and_read_by_the_adapter(uci, tmp_path):
    path, stats, df = uci
    assert detect_format([path]) == "uci"
    report = ingest_adapted([path], tmp_path, "uci")
    cancelled = df.InvoiceNo.str.startswith("C")
    no_customer = ~cancelled & (df.CustomerID == "")
    assert report["rows_read"] == LINES
    assert report["dropped"] == {"unparsable": 0, "cancelled": int(cancelled.sum()),
                                 "no_customer": int(no_customer.sum()), "invalid_value": 0, "duplicate": 0}
    ev = pd.read_parquet(tmp_path / "events.parquet")
    S.validate_events(ev)
    assert len(ev) == report["rows_kept"] == LINES - cancelled.sum() - no_customer.sum()
    assert set(ev.event_type) == {S.PURCHASE}  # no views: invoices are the sessions
    kept = df[~cancelled & ~no_customer]
    assert ev.user_session.nunique() == kept.InvoiceNo.nunique()
    assert set(ev.product_id) == {stock_code_id(c) for c in kept.StockCode}


def test_purchases_repeat_far_above_a_shuffled_baseline():
    log = build_wholesale_log(LINES, SEED, **SIZES)
    p = ~log.cancel & (log.customer > 0)
    c, item, t = log.customer[p], log.item[p], log.minute[p]
    share = repeat_share(c, item, t)
    shuffled = np.mean([repeat_share(c, np.random.default_rng(k).permutation(item), t) for k in range(5)])
    assert share > 1.3 * shuffled and share > 0.3
    df = pd.DataFrame({"c": c, "item": item, "t": t})
    df["again"] = df.sort_values("t").duplicated(["c", "item"])
    per = df.groupby("c").agg(visits=("t", "nunique"), again=("again", "any"))
    assert per.again[per.visits >= 2].mean() > 0.8  # most returning customers re-buy something


def test_partner_products_share_invoices_far_above_chance():
    log = build_wholesale_log(LINES, SEED, **SIZES)
    cat = log.catalog
    lines = pd.DataFrame({"inv": log.invoice, "item": log.item})[~log.cancel].drop_duplicates()
    baskets = lines.groupby("item").inv.agg(set)
    n_inv = lines.inv.nunique()
    cond, marg = [], []
    for a in np.nonzero(cat.partner >= 0)[0]:
        b = cat.partner[a]
        if a in baskets and len(baskets[a]) >= 3:
            cond.append(len(baskets[a] & baskets.get(b, set())) / len(baskets[a]))
            marg.append(len(baskets.get(b, set())) / n_inv)
    assert len(cond) >= 10
    assert np.mean(cond) > 0.3 and np.mean(cond) > 4 * np.mean(marg)


def test_catalog_changes_over_the_year():
    log = build_wholesale_log(LINES, SEED, **SIZES)
    cat, day = log.catalog, log.minute // 1440
    assert ((cat.intro > 0).any() and (cat.until <= day.max()).any())
    assert ((day >= cat.intro[log.item]) & (day < cat.until[log.item])).all()  # sold only while on sale


def test_rees46_writer_ingests_the_same_purchases(tmp_path):
    rees, uci_path = tmp_path / "w-rees46.csv", tmp_path / "w-uci.csv"
    stats = write_wholesale_rees46(rees, lines=LINES, seed=SEED, **SIZES)
    write_wholesale_uci(uci_path, lines=LINES, seed=SEED, **SIZES)
    head = rees.read_text().splitlines()[:2]
    assert head[0] == ",".join(S.EVENT_COLUMNS)
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC,purchase,\d+,\d+,[a-z.]+,,[\d.]+,\d+,"
                        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", head[1])
    assert detect_format([rees]) == "rees46"
    build_events(tmp_path / "a", [rees])
    build_events(tmp_path / "b", [uci_path])
    q = load_quality(tmp_path / "a")
    assert q["rows_read"] == q["rows_kept"] == stats["lines"] and sum(q["dropped"].values()) == 0
    cols = [S.EVENT_TIME, S.PRODUCT_ID, S.PRICE, S.USER_ID]
    a, b = (pd.read_parquet(tmp_path / r / "events" / "events.parquet") for r in ("a", "b"))
    assert set(a.event_type) == {S.PURCHASE} and a.category_code.nunique() > 5
    assert a[cols].sort_values(cols).reset_index(drop=True).equals(b[cols].sort_values(cols).reset_index(drop=True))


def test_cli_profiles_and_formats(tmp_path, capsys):
    out = tmp_path / "w.csv"
    assert main(["demo", "--profile", "wholesale", "--events", "2000", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == HEADER and len(out.read_text().splitlines()) == 2001
    assert main(["demo", "--profile", "wholesale", "--format", "rees46", "--events", "2000",
                 "--out", str(tmp_path / "r.csv")]) == 0
    assert (tmp_path / "r.csv").read_text().startswith("event_time,")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--format", "uci", "--out", str(tmp_path / "x.csv")])
    assert exc.value.code == 2 and "--profile wholesale" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
