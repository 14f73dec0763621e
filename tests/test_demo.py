"""The synthetic demo store: deterministic, exact REES46 format, ingestible, and realistic where models need it."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.ingest.demo import DemoConfig, build_world, write_big_csv, write_demo_csv
from recsys.ingest.reader import ingest_files

EVENTS, SEED = 40_000, 11
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, dict, pd.DataFrame]:
    """One demo CSV, its summary stats and its rows as strings (empty fields stay empty)."""
    path = tmp_path_factory.mktemp("demo") / "demo.csv"
    stats = write_demo_csv(path, events=EVENTS, seed=SEED)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return path, stats, df


@pytest.fixture(scope="module")
def events(store) -> pd.DataFrame:
    """The rows typed, with a day and a UTC hour."""
    df = store[2].copy()
    df["ts"] = pd.to_datetime(df[S.EVENT_TIME].str[:19])
    for col in (S.PRODUCT_ID, S.CATEGORY_ID, S.USER_ID):
        df[col] = df[col].astype("int64")
    df[S.PRICE] = df[S.PRICE].astype(float)
    return df


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_demo_csv(a, events=20_000, seed=3)
    write_demo_csv(b, events=20_000, seed=3)
    write_demo_csv(c, events=20_000, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_gzip_output_is_deterministic_and_same_text(tmp_path):
    import gzip
    write_demo_csv(tmp_path / "a.csv.gz", events=5_000, seed=3)
    write_demo_csv(tmp_path / "b.csv.gz", events=5_000, seed=3)
    write_demo_csv(tmp_path / "c.csv", events=5_000, seed=3)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.csv.gz").read_bytes()) == (tmp_path / "c.csv").read_bytes()


def test_exact_rees46_format(store):
    path, stats, df = store
    assert path.read_text().split("\n", 1)[0] == HEADER
    assert len(df) == stats["rows"] == EVENTS
    assert df[S.EVENT_TIME].str.fullmatch(r"2019-1[01]-\d\d \d\d:\d\d:\d\d UTC").all()
    assert df[S.EVENT_TIME].is_monotonic_increasing  # sorted like the real files
    assert set(df[S.EVENT_TYPE]) <= set(S.EVENT_TYPES)
    assert df[S.PRICE].str.fullmatch(r"\d+\.\d\d").all()
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    has_session = df[S.USER_SESSION] != ""
    assert df.loc[has_session, S.USER_SESSION].str.fullmatch(uuid).all()
    assert (~has_session).sum() == stats["dirty_rows"]["no_session"] > 0
    codes = df.loc[df[S.CATEGORY_CODE] != "", S.CATEGORY_CODE]
    assert codes.str.fullmatch(r"[a-z_]+(\.[a-z_]+){1,3}").all()
    ids = df[[S.PRODUCT_ID, S.CATEGORY_ID, S.USER_ID]].astype("int64")
    assert ids[S.PRODUCT_ID].between(1_000_000, 100_000_000).all()
    assert ids[S.CATEGORY_ID].between(2_050_000_000_000_000_000, 2_200_000_000_000_000_000).all()
    assert ids[S.USER_ID].between(100_000_000, 600_000_000).all()


def test_ingest_reads_every_row_and_finds_the_planted_dirt(store, tmp_path):
    path, stats, _ = store
    report = ingest_files([path], tmp_path)
    assert report["rows_read"] == EVENTS == report["rows_kept"] + sum(report["dropped"].values())
    assert report["dropped"]["unparsable"] == report["dropped"]["invalid_value"] == 0
    assert report["dropped"]["duplicate"] == stats["dirty_rows"]["duplicate"] > 0
    assert report["dropped"]["no_session"] == stats["dirty_rows"]["no_session"] > 0
    assert report["filled"]["brand_from_product"] > 0  # some products miss their brand only sometimes
    assert report["filled"]["category_code_from_product"] == 0  # a missing code belongs to the category id
    events = pd.read_parquet(tmp_path / "events.parquet")
    S.validate_events(events)


def test_funnel_shares_near_the_real_october(events, store):
    shares = events[S.EVENT_TYPE].value_counts(normalize=True)
    assert 0.94 < shares["view"] < 0.975
    assert 0.015 < shares["cart"] < 0.03
    assert 0.012 < shares["purchase"] < 0.025
    assert shares.get("remove_from_cart", 0) == 0  # like the real Oct file, unless configured
    assert store[1]["event_shares"]["purchase"] == pytest.approx(shares["purchase"], abs=1e-4)
    buys = events[events[S.EVENT_TYPE] == "purchase"]
    carts = events[events[S.EVENT_TYPE] == "cart"]
    m = buys.merge(carts, on=[S.USER_SESSION, S.PRODUCT_ID], suffixes=("", "_c"))
    carted_first = m[m["ts_c"] <= m["ts"]].drop_duplicates([S.USER_SESSION, S.PRODUCT_ID])
    assert len(carted_first) / len(buys.drop_duplicates([S.USER_SESSION, S.PRODUCT_ID])) > 0.6


def test_remove_from_cart_is_configurable(tmp_path):
    stats = write_demo_csv(tmp_path / "r.csv", events=20_000, seed=1, config=DemoConfig(remove_share=0.5))
    assert stats["event_shares"]["remove_from_cart"] > 0


def test_missing_brand_and_code_like_real_data(events, store):
    miss_brand = (events[S.BRAND] == "").mean()
    miss_code = (events[S.CATEGORY_CODE] == "").mean()
    assert 0.10 < miss_brand < 0.19 and 0.27 < miss_code < 0.37
    assert store[1]["missing_shares"]["brand"] == pytest.approx(miss_brand, abs=1e-4)
    # a category id either always or never has a code; a product's brand is missing only sometimes rarely
    code_share = (events[S.CATEGORY_CODE] != "").groupby(events[S.CATEGORY_ID]).mean()
    assert code_share.isin([0.0, 1.0]).all()
    brand_share = (events[S.BRAND] != "").groupby(events[S.PRODUCT_ID]).mean()
    sometimes = ((brand_share > 0) & (brand_share < 1)).mean()
    assert 0 < sometimes < 0.05


def test_catalog_is_realistic(events):
    per_product = events.groupby(S.PRODUCT_ID).agg(cat=(S.CATEGORY_ID, "nunique"), price=(S.PRICE, "median"))
    assert (per_product["cat"] == 1).all()
    phones = events.loc[events[S.CATEGORY_CODE] == "electronics.smartphone", S.PRICE].median()
    notebooks = events.loc[events[S.CATEGORY_CODE] == "computers.notebook", S.PRICE].median()
    mice = events.loc[events[S.CATEGORY_CODE] == "computers.peripherals.mouse", S.PRICE].median()
    assert 150 < phones < 600 and 350 < notebooks < 1000 and mice < 40
    assert 30 <= events[S.CATEGORY_ID].nunique() and events[S.CATEGORY_CODE].nunique() >= 30
    # power-law popularity: the top 1% of products draw far more than 1% of events
    counts = events[S.PRODUCT_ID].value_counts()
    assert counts.iloc[: max(1, len(counts) // 100)].sum() / len(events) > 0.05
    brands = events.loc[events[S.BRAND] != "", S.BRAND].value_counts(normalize=True)
    assert brands.index[0] in {"samsung", "apple"} and 0.3 < brands.iloc[:10].sum() < 0.7


def test_sessions_browse_similar_items(events):
    views = events[(events[S.EVENT_TYPE] == "view") & (events[S.USER_SESSION] != "")]
    same = views[S.CATEGORY_ID].eq(views.groupby(S.USER_SESSION)[S.CATEGORY_ID].shift())
    has_prev = views.groupby(S.USER_SESSION).cumcount() > 0
    assert same[has_prev].mean() > 0.7
    per_session = views.groupby(S.USER_SESSION).size()
    assert 2 < per_session.mean() < 6 and per_session.median() <= 3


def test_complementary_purchases_above_chance(events):
    w = build_world(EVENTS, SEED)
    accessory = {int(c) for c, g in zip(w.cat_id, w.cat_group)
                 if g in ("~phone_accessories", "electronics.audio.headphone")}
    buys = events[events[S.EVENT_TYPE] == "purchase"]
    phone = set(buys.loc[buys[S.CATEGORY_CODE] == "electronics.smartphone", S.USER_ID])
    acc = set(buys.loc[buys[S.CATEGORY_ID].isin(accessory), S.USER_ID])
    buyers = set(buys[S.USER_ID])
    # user level: phone buyers buy an accessory (same or a later session) far more often than other buyers
    assert len(phone & acc) / len(phone) > 2.5 * len(acc - phone) / len(buyers - phone)
    sess = set(buys[S.USER_SESSION])
    sess_phone = set(buys.loc[buys[S.CATEGORY_CODE] == "electronics.smartphone", S.USER_SESSION])
    sess_acc = set(buys.loc[buys[S.CATEGORY_ID].isin(accessory), S.USER_SESSION])
    # session level (what association rules see): support and lift above chance
    assert len(sess_phone & sess_acc) >= 20
    assert len(sess_phone & sess_acc) / len(sess_phone) > 1.5 * len(sess_acc - sess_phone) / len(sess - sess_phone)


def test_returning_users_repeat_purchases_and_seasonality(events):
    sessions = events[events[S.USER_SESSION] != ""].groupby(S.USER_ID)[S.USER_SESSION].nunique()
    assert (sessions > 1).mean() > 0.3
    days = events.groupby(S.USER_ID)["ts"].apply(lambda t: t.dt.date.nunique())
    assert (days >= 3).mean() > 0.15
    buys = events[events[S.EVENT_TYPE] == "purchase"].drop_duplicates()
    assert buys.duplicated([S.USER_ID, S.PRODUCT_ID]).sum() > 0
    per_day = events.groupby(events["ts"].dt.date).size()
    median = per_day.median()
    assert per_day[pd.Timestamp("2019-11-16").date()] > 1.5 * median  # the mid-November sale
    assert per_day[pd.Timestamp("2019-11-29").date()] > 1.3 * median  # Black Friday
    per_hour = events.groupby(events["ts"].dt.hour).size()
    assert per_hour[15:19].mean() > 3 * per_hour[0:3].mean()  # evening peak (UTC+3), night trough


def test_chunked_big_file_has_exact_rows_and_stays_sorted(tmp_path):
    path = tmp_path / "big.csv"
    stats = write_big_csv(path, events=30_000, seed=5, chunk_events=7_000)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER and len(lines) - 1 == stats["rows"] == 30_000
    times = [ln[:19] for ln in lines[1:]]
    assert times == sorted(times)
    one = tmp_path / "one.csv"
    write_big_csv(one, events=30_000, seed=5, chunk_events=30_000)
    write_demo_csv(tmp_path / "demo.csv", events=30_000, seed=5)
    assert one.read_bytes() == (tmp_path / "demo.csv").read_bytes()
    users = [ln.rsplit(",", 2)[1] for ln in lines[1:]]
    assert stats["users"] == len(set(users))


@pytest.mark.parametrize("n", [1, 7, 999, 1000, 3000])
def test_any_size_gives_exactly_that_many_rows(tmp_path, n):
    stats = write_demo_csv(tmp_path / "x.csv", events=n, seed=2)
    assert stats["rows"] == n == len((tmp_path / "x.csv").read_text().splitlines()) - 1
    assert (stats["dirty_rows"]["duplicate"] > 0) == (n >= 1000)


def test_bad_size_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="events must be >= 1"):
        write_demo_csv(tmp_path / "x.csv", events=0)


def test_progress_fractions_stay_in_range(tmp_path):
    seen: list[float] = []
    write_big_csv(tmp_path / "p.csv", events=6_000, chunk_events=2_000, progress=lambda f, m: seen.append(f))
    assert seen and all(0 <= f <= 1 for f in seen) and seen == sorted(seen) and seen[-1] == 1.0
    assert np.all(np.diff(seen) >= 0)


def test_split_months_writes_the_same_rows_one_file_per_month(tmp_path):
    whole = tmp_path / "whole.csv"
    write_big_csv(whole, events=30_000, seed=5, chunk_events=7_000)
    stats = write_big_csv(tmp_path / "store.csv", events=30_000, seed=5, chunk_events=7_000, split_months=True)
    assert [Path(f).name for f in stats["files"]] == ["store-2019-10.csv", "store-2019-11.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store-2019-10.csv", "store-2019-11.csv", "whole.csv"]
    parts = [Path(f).read_text().splitlines() for f in stats["files"]]
    assert all(p[0] == HEADER for p in parts)
    assert all(line.startswith("2019-10-") for line in parts[0][1:])
    assert all(line.startswith("2019-11-") for line in parts[1][1:])
    assert parts[0][1:] + parts[1][1:] == whole.read_text().splitlines()[1:]
    assert stats["rows"] == len(parts[0]) + len(parts[1]) - 2 == 30_000


def test_traffic_growth_moves_the_month_split(tmp_path):
    flat = write_big_csv(tmp_path / "a.csv", events=30_000, seed=5, split_months=True)
    grown = write_big_csv(tmp_path / "b.csv", events=30_000, seed=5, split_months=True,
                          config=DemoConfig(traffic_growth=1.0))

    def nov_share(stats):
        rows = [len(Path(f).read_text().splitlines()) - 1 for f in stats["files"]]
        return rows[1] / sum(rows)

    assert 0.5 < nov_share(flat) < 0.56  # 10% growth plus the November sales
    assert 0.58 < nov_share(grown) < 0.64  # the real files: 67.5M of 109.9M rows = 0.614


def test_split_months_keeps_dots_in_the_name_and_the_gzip_suffix(tmp_path):
    stats = write_big_csv(tmp_path / "oct-0.02M.csv.gz", events=4_000, seed=5, split_months=True)
    assert [Path(f).name for f in stats["files"]] == ["oct-0.02M-2019-10.csv.gz", "oct-0.02M-2019-11.csv.gz"]
    with gzip.open(stats["files"][1], "rt") as f:
        lines = f.read().splitlines()
    assert lines[0] == HEADER and lines[1].startswith("2019-11-")
