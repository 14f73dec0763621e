"""Hand-made stores for tests: RetailRocket and UCI Online Retail files small enough to check by hand, and the
events table of a build read back against the column contract. Fixtures over them live in conftest.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys import schema as S

MIN = 60_000  # one minute in RetailRocket milliseconds
T0 = 1_433_221_332_000

RR_EVENTS = f"""timestamp,visitorid,event,itemid,transactionid
{T0},7,view,100,
{T0 + 29 * MIN},7,addtocart,100,
{T0 + 60 * MIN},7,transaction,100,4000
{T0 + 60 * MIN},7,transaction,100,4000
{T0 + 61 * MIN},7,view,200,
{T0 + 5 * MIN},8,view,300,
{T0 + 6 * MIN},8,like,300,
oops,8,view,300,
"""
RR_PROPS = f"""timestamp,itemid,property,value
{T0 - 10 * MIN},100,categoryid,1338
{T0 - 5 * MIN},100,categoryid,1091
{T0},200,categoryid,1338
{T0},200,790,n1234.000
"""
RR_TREE = """categoryid,parentid
1338,1482
1091,1338
1482,
"""
UCI_ROWS = [
    # InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
    ("536365", "85123A", "WHITE HANGING HEART", 6, "12/1/2010 8:26", 2.55, "17850", "United Kingdom"),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "12/1/2010 8:26", 3.39, "17850", "United Kingdom"),
    ("536365", "71053", "WHITE METAL LANTERN", 6, "12/1/2010 8:26", 3.39, "17850", "United Kingdom"),  # duplicate
    ("536366", "22633", "HAND WARMER", 6, "12/1/2010 8:28", 1.85, "17851", "United Kingdom"),
    ("C536379", "D", "Discount", -1, "12/1/2010 9:41", 27.5, "14527", "United Kingdom"),          # cancellation
    ("536414", "22139", "RETROSPOT TEA SET", 56, "12/1/2010 11:52", 0.0, "", "United Kingdom"),    # no customer
    ("536415", "22140", "BROKEN", -3, "12/1/2010 11:53", 1.0, "17852", "United Kingdom"),         # invalid qty
    ("536416", "22141", "BAD DATE", 1, "not a date", 1.0, "17852", "United Kingdom"),             # unparsable
]
UCI_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
               "Country"]


def events_of(root: Path) -> pd.DataFrame:
    """The events Parquet, checked against the column contract."""
    import pyarrow.parquet as pq
    path = root / "events" / "events.parquet"
    S.validate_parquet_schema(pq.read_schema(path))
    return pd.read_parquet(path)


def write_rr_dir(d: Path) -> Path:
    """The hand-made RetailRocket folder (events, one item-properties part, the category tree) in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "events.csv").write_text(RR_EVENTS)
    (d / "item_properties_part1.csv").write_text(RR_PROPS)
    (d / "category_tree.csv").write_text(RR_TREE)
    return d


def write_uci_csv(path: Path, rows=UCI_ROWS) -> Path:
    pd.DataFrame(rows, columns=UCI_COLUMNS).to_csv(path, index=False)
    return path


def write_uci_xlsx(path: Path, rows=UCI_ROWS) -> Path:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(UCI_COLUMNS)
    for r in rows:
        r = list(r)
        try:  # Excel stores real datetimes, the way the UCI file does
            r[4] = pd.to_datetime(r[4], format="%m/%d/%Y %H:%M").to_pydatetime()
        except ValueError:
            pass
        r[6] = float(r[6]) if r[6] else None
        ws.append(r)
    wb.save(path)
    return path


NAMED = [("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55), ("71053", "WHITE METAL LANTERN", 3.39),
         ("84406B", "CREAM CUPID HEARTS COAT HANGER", 2.75), ("22633", "HAND WARMER UNION JACK", 2.10),
         ("22632", "HAND WARMER RED POLKA DOT", 1.85), ("21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 4.25)]


def write_named_uci(path: Path, invoices: int = 24) -> Path:
    """A small UCI log with real descriptions: the heart holder goes with the lantern, one hand warmer with the
    other; the coat hanger and the glass holder now and then. A few lines have another or no Description."""
    rows = []
    for i in range(invoices):
        lines = (NAMED[:2] if i % 2 == 0 else NAMED[3:5]) + ([NAMED[2 + 3 * (i % 2)]] if i % 3 == 0 else [])
        rows += [(str(537000 + i), code, name, 6, f"12/{1 + i}/2010 9:00", price, str(17000 + i % 8),
                  "United Kingdom") for code, name, price in lines]
    rows += [("537900", "85123A", "?", 1, "12/30/2010 9:00", 2.55, "17001", "United Kingdom"),
             ("537901", "71053", "", 1, "12/30/2010 9:05", 3.39, "17002", "United Kingdom"),
             ("537902", "71053", "", 1, "12/30/2010 9:06", 3.39, "17003", "United Kingdom")]
    return write_uci_csv(path, rows)


def synthetic_uci(path: Path, customers: int = 120, invoices: int = 6, lines: int = 3, seed: int = 0) -> Path:
    """A UCI-format store big enough for every stage: 4 clusters of 10 stock codes, customers loyal to one."""
    rng = np.random.default_rng(seed)
    codes = [f"{20000 + i}" for i in range(30)] + [f"{85000 + i}A" for i in range(10)]
    rows, inv, start = [], 536365, pd.Timestamp("2010-12-01 08:00")
    for c in range(customers):
        pool = codes[(c % 4) * 10:(c % 4 + 1) * 10]
        for _ in range(invoices):
            when = start + pd.Timedelta(days=int(rng.integers(0, 60)), minutes=int(rng.integers(0, 600)))
            for code in rng.choice(pool, lines, replace=False):
                rows.append((str(inv), code, f"ITEM {code}", int(rng.integers(1, 12)),
                             when.strftime("%m/%d/%Y %H:%M"), round(float(rng.uniform(0.5, 9)), 2),
                             str(12000 + c), "United Kingdom"))
            inv += 1
    return write_uci_csv(path, rows)


def assert_same_tables(a: Path, b: Path) -> int:
    """Every Parquet file of stage folder ``a`` has a twin in ``b`` with the same columns, types and rows in the
    same order (nullability aside: which fields a writer marks required depends on the writer); returns how many
    files were compared. What the engine-parity tests check."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def loose(t: pa.Table) -> pa.Table:
        return t.cast(pa.schema([f.with_nullable(True) for f in t.schema]))

    files = sorted(p.name for p in a.glob("*.parquet"))
    assert files == sorted(p.name for p in b.glob("*.parquet")), (files, sorted(p.name for p in b.glob("*")))
    for name in files:
        ta, tb = loose(pq.read_table(a / name)), loose(pq.read_table(b / name))
        assert ta.schema == tb.schema, f"{name}: {ta.schema} != {tb.schema}"
        assert ta.num_rows == tb.num_rows, f"{name}: {ta.num_rows} rows != {tb.num_rows}"
        if not ta.equals(tb):
            da, db = ta.to_pandas(), tb.to_pandas()
            bad = [c for c in da.columns if not da[c].equals(db[c])]
            raise AssertionError(f"{name}: columns {bad} differ, e.g. {da[bad].head(3)} vs {db[bad].head(3)}")
    return len(files)


def write_events_stage(root: Path, rows: list[tuple]) -> Path:
    """A hand-made events stage under ``root`` (rows in contract column order): what the derived stages read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.artifacts import EVENTS_FILE, EVENTS_STAGE
    from recsys.journal import StageResult, run_stage
    df = pd.DataFrame(rows, columns=list(S.EVENT_COLUMNS))

    def run(tmp: Path, prog) -> StageResult:
        pq.write_table(pa.Table.from_pandas(df, schema=S.ARROW_SCHEMA, preserve_index=False), tmp / EVENTS_FILE)
        return StageResult(rows={"events": len(df)}, params={})

    run_stage(root, EVENTS_STAGE, run, input_fingerprint=f"hand-made {len(df)}")
    return root
