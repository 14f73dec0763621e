"""Other stores' files -> the canonical event table: format detection from the header, RetailRocket and UCI.

``detect_format`` reads only the header of each input. REES46 files (and anything unrecognised, so that its
errors stay the REES46 ones) go through ``recsys.ingest.reader``; the formats below are mapped here into the same
``events.parquet`` + ``quality.json`` (same report shape: rows read = rows kept + every drop) of the events stage.

RetailRocket (``events.csv``: timestamp in ms, visitorid, event, itemid, transactionid):
- view -> view, addtocart -> cart, transaction -> purchase; other event names are dropped as invalid;
- sessions: a visitor's events more than 30 minutes apart start a new session (``<visitorid>-<n>``);
- categories from ``item_properties*.csv`` rows with property ``categoryid`` (the item's latest value), and
  ``category_tree.csv`` (categoryid, parentid) gives category_code as the path of ids from the root, e.g.
  ``1482.1338.1091``; these files are taken from the inputs, else from the events file's folder when present;
- the public files have no brands and only hashed prices: brand is ``unknown_brand``, price 0.
UCI Online Retail (CSV or xlsx: InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country; the "Online Retail II" spellings Invoice, Price, Customer ID are accepted too):
- every kept row is one purchase event; the invoice is the session; InvoiceDate (UK time) is taken as UTC;
- invoices starting with ``C`` are cancellations and dropped; rows without CustomerID cannot be attributed to a
  user and are dropped; rows with Quantity <= 0 or a negative UnitPrice are dropped as invalid; all counted;
- numeric StockCodes keep their number as product_id; others (``85123A``, ``POST``) get a stable id from a hash,
  listed with their code and description in ``item_names.parquet``; there are no views, categories or brands.
  A product's name is its most frequent non-empty Description among the kept rows (ties: the first
  alphabetically). Other stages read the names only through :func:`load_product_names`.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import (EVENTS_FILE, EVENTS_STAGE, ArtifactError, Progress, StageResult, artifacts_root,
                              check_files,
                              file_fingerprint, fingerprint, no_progress, read_manifest, run_stage, sql_literal,
                              stage_dir, write_json)
from recsys.ingest.reader import zip_member

log = logging.getLogger(__name__)

QUALITY_FILE = "quality.json"
ITEM_NAMES_FILE = "item_names.parquet"
NAME_COLUMNS = ("product_id", "stock_code", "name")
SESSION_GAP_S = 30 * 60

RR_EVENTS = {"timestamp", "visitorid", "event", "itemid", "transactionid"}
RR_PROPERTIES = {"timestamp", "itemid", "property", "value"}
RR_TREE = {"categoryid", "parentid"}
UCI_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
               "Country")
UCI_ALIASES = {"invoice": "InvoiceNo", "invoiceno": "InvoiceNo", "stockcode": "StockCode",
               "description": "Description", "quantity": "Quantity", "invoicedate": "InvoiceDate",
               "unitprice": "UnitPrice", "price": "UnitPrice", "customerid": "CustomerID",
               "customer id": "CustomerID", "country": "Country"}
RR_EVENT_MAP = {"view": S.VIEW, "addtocart": S.CART, "transaction": S.PURCHASE}


class AdapterError(ValueError):
    """An input of a recognised store format cannot be mapped; the message says what to fix."""


# ---- detection --------------------------------------------------------------------------------------------

def _is_excel(name: str | Path) -> bool:
    return str(name).lower().endswith((".xlsx", ".xlsm"))


def _zip_data(path: Path, whole: bool) -> tuple[bytes, str]:
    """(bytes, member name) of a .zip's one data file (``recsys.ingest.reader.zip_member``): all of it, or its first
    line when ``whole`` is False and it is not an Excel file."""
    with zipfile.ZipFile(path) as z:
        member = zip_member(z, path)
        with z.open(member) as f:
            return (f.read() if whole or _is_excel(member) else f.readline(1 << 16)), member


def read_header_names(path: Path) -> list[str]:
    """Column names of a CSV (plain, .gz or the one CSV of a .zip) or the first sheet of an .xlsx (also zipped);
    [] when unreadable."""
    try:
        member, data = str(path), None
        if path.suffix.lower() == ".zip":
            data, member = _zip_data(path, whole=False)
        if _is_excel(member):
            from openpyxl import load_workbook
            wb = load_workbook(io.BytesIO(data) if data is not None else path, read_only=True)
            try:
                row = next(wb.worksheets[0].iter_rows(max_row=1, values_only=True), ())
            finally:
                wb.close()
            return [str(c).strip() for c in row if c is not None]
        if data is not None:
            first = data
        else:
            with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
                first = f.readline(1 << 16)
        text = first.decode("utf-8-sig", errors="replace").strip()
        return [c.strip().strip('"') for c in next(csv.reader([text]), [])]
    except Exception:  # unreadable files are left to the REES46 checks, which explain them
        return []


def file_role(names: list[str]) -> str | None:
    """What one file is, from its header: rees46, rr_events, rr_properties, rr_tree, uci, or None."""
    have = set(names)
    if not S.missing_columns(names):
        return "rees46"
    if RR_EVENTS <= have:
        return "rr_events"
    if RR_PROPERTIES <= have:
        return "rr_properties"
    if RR_TREE <= have and len(have) <= 3:
        return "rr_tree"
    if set(UCI_COLUMNS) <= {UCI_ALIASES.get(n.lower(), n) for n in names}:
        return "uci"
    return None


def detect_format(paths: list[Path]) -> str:
    """``rees46``, ``retailrocket`` or ``uci`` for a set of input files (unrecognised files count as rees46)."""
    if any(not Path(p).is_file() for p in paths):
        return "rees46"  # the REES46 checks explain a missing path or a directory
    roles = {Path(p): file_role(read_header_names(Path(p))) for p in paths}
    kinds = set(roles.values())
    if "rr_events" in kinds:
        other = [str(p) for p, r in roles.items() if r not in ("rr_events", "rr_properties", "rr_tree")]
        if other:
            raise AdapterError(f"{other[0]}: not a RetailRocket file (events.csv, item_properties*.csv or "
                               f"category_tree.csv); ingest different stores separately")
        return "retailrocket"
    if kinds & {"rr_properties", "rr_tree"}:
        p = next(p for p, r in roles.items() if r in ("rr_properties", "rr_tree"))
        raise AdapterError(f"{p}: a RetailRocket {roles[p][3:]} file needs the RetailRocket events.csv as well")
    if kinds == {"uci"}:
        return "uci"
    if "uci" in kinds:
        other = next(p for p, r in roles.items() if r != "uci")
        raise AdapterError(f"{other}: not a UCI Online Retail file like the others; ingest stores separately")
    for p in paths:
        near = _near_format(read_header_names(Path(p))) if roles[Path(p)] is None else None
        if near:
            raise AdapterError(f"{p}: looks like a {near[0]} file but has no column(s) {', '.join(near[1])}; "
                               f"that format needs {', '.join(near[2])}")
        if Path(p).suffix.lower() in (".xlsx", ".xlsm"):
            raise AdapterError(f"{p}: an Excel file is read only as UCI Online Retail (columns "
                               f"{', '.join(UCI_COLUMNS)}); its first row has none of them")
    return "rees46"


def _near_format(names: list[str]) -> tuple[str, list[str], list[str]] | None:
    """(format, missing, needed) when a header holds at least half of the RetailRocket events' or UCI's columns
    and more of them than of REES46's, so the message names the format the file was meant to be."""
    uci_names = {UCI_ALIASES.get(n.lower(), n) for n in names}
    rr_order = ["timestamp", "visitorid", "event", "itemid", "transactionid"]
    rees46 = len(set(names) & set(S.EVENT_COLUMNS)) / len(S.EVENT_COLUMNS)
    best = None
    for fmt, needed, have in (("RetailRocket events", rr_order, set(names)),
                              ("UCI Online Retail", list(UCI_COLUMNS), uci_names)):
        share = len(have & set(needed)) / len(needed)
        if share >= 0.5 and share > rees46 and (best is None or share > best[0]):
            best = (share, fmt, [c for c in needed if c not in have], needed)
    return best[1:] if best else None


def _retailrocket_files(paths: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """(events, item_properties, category_tree) files: the given ones, else siblings of the events file."""
    roles = {p: file_role(read_header_names(p)) for p in paths}
    events = [p for p, r in roles.items() if r == "rr_events"]
    props = [p for p, r in roles.items() if r == "rr_properties"]
    tree = [p for p, r in roles.items() if r == "rr_tree"]
    folder = events[0].parent
    if not props:
        props = sorted(p for p in folder.glob("item_properties*.csv") if file_role(read_header_names(p)))
    if not tree and (folder / "category_tree.csv").exists():
        tree = [folder / "category_tree.csv"]
    return events, props, tree


# ---- RetailRocket -------------------------------------------------------------------------------------------


def _category_paths(tree: pd.DataFrame) -> dict[int, str]:
    """categoryid -> dotted path of ids from its root (cycles and unknown parents end the walk)."""
    parent = {int(c): (None if pd.isna(p) else int(p)) for c, p in zip(tree["categoryid"], tree["parentid"])}
    out = {}
    for c in parent:
        path, seen, cur = [], set(), c
        while cur is not None and cur not in seen:
            seen.add(cur)
            path.append(str(cur))
            cur = parent.get(cur)
        out[c] = ".".join(reversed(path))
    return out


def ingest_retailrocket(paths: list[Path], out_dir: Path, source: str = "files",
                        progress: Progress = no_progress) -> dict[str, Any]:
    """RetailRocket files -> ``out_dir/events.parquet`` + ``quality.json``; returns the report."""
    events, props, tree = _retailrocket_files(paths)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = "[" + ", ".join(sql_literal(p) for p in events) + "]"
    cols = "{'timestamp': 'BIGINT', 'visitorid': 'BIGINT', 'event': 'VARCHAR', 'itemid': 'BIGINT', " \
           "'transactionid': 'BIGINT'}"
    try:
        con.execute(f"""CREATE TABLE raw AS SELECT timestamp, visitorid, event, itemid, transactionid
                        FROM read_csv({files}, header = true, columns = {cols}, auto_detect = false,
                                      store_rejects = true, rejects_table = 'rej', rejects_scan = 'rej_scan')""")
    except duckdb.Error as exc:
        raise AdapterError(f"{events[0]}: cannot be read as a RetailRocket events.csv: "
                           f"{str(exc).splitlines()[0]}") from exc
    n_bad = con.execute("SELECT count(*) FROM (SELECT DISTINCT file_id, line FROM rej)").fetchall()[0][0]
    samples = [{"file": str(events[min(int(f), len(events) - 1)]), "line": int(line), "error": str(msg)[:200],
                "content": (c or "").strip()[:300]}
               for f, line, msg, c in con.execute("""SELECT file_id, line, min(error_message), min(csv_line)
                   FROM rej GROUP BY file_id, line ORDER BY file_id, line LIMIT 5""").fetchall()]
    progress(0.3, "events parsed")
    mapped = ", ".join(f"('{k}', '{v}')" for k, v in RR_EVENT_MAP.items())
    con.execute(f"CREATE TABLE emap AS SELECT * FROM (VALUES {mapped}) t(event, event_type)")
    parsed, invalid = con.execute("""SELECT count(*), count(*) FILTER (WHERE timestamp IS NULL OR visitorid IS NULL
                                     OR itemid IS NULL OR event NOT IN (SELECT event FROM emap)) FROM raw""").fetchall()[0]
    con.execute("""CREATE TABLE valid AS SELECT DISTINCT r.timestamp, r.visitorid, m.event_type, r.itemid,
                   r.transactionid FROM raw r JOIN emap m USING (event)
                   WHERE r.timestamp IS NOT NULL AND r.visitorid IS NOT NULL AND r.itemid IS NOT NULL""")
    kept = con.execute("SELECT count(*) FROM valid").fetchall()[0][0]
    duplicates = int(parsed) - int(invalid) - int(kept)
    # categories: each item's latest categoryid property, and the path of ids through the tree
    con.execute("CREATE TABLE item_cat (itemid BIGINT, category_id BIGINT)")
    if props:
        plist = "[" + ", ".join(sql_literal(p) for p in props) + "]"
        con.execute(f"""INSERT INTO item_cat SELECT itemid, arg_max(TRY_CAST(value AS BIGINT), timestamp)
                        FROM read_csv({plist}, header = true, auto_detect = false, ignore_errors = true,
                             columns = {{'timestamp': 'BIGINT', 'itemid': 'BIGINT', 'property': 'VARCHAR',
                                        'value': 'VARCHAR'}})
                        WHERE property = 'categoryid' AND TRY_CAST(value AS BIGINT) IS NOT NULL
                        GROUP BY itemid""")
    paths_df = pd.DataFrame({"category_id": pd.Series([], dtype="int64"), "code": pd.Series([], dtype=object)})
    if tree:
        t = pd.concat([pd.read_csv(p, dtype={"categoryid": "Int64", "parentid": "Int64"}) for p in tree])
        t = t.dropna(subset=["categoryid"])
        cp = _category_paths(t)
        paths_df = pd.DataFrame({"category_id": np.array(list(cp), dtype=np.int64), "code": list(cp.values())})
    con.register("cat_paths", paths_df)
    progress(0.6, "categories joined")
    # sessions: a gap of more than 30 minutes between a visitor's consecutive events starts a new one
    con.execute(f"""CREATE TABLE sess AS SELECT *, visitorid::VARCHAR || '-' ||
                        sum(CASE WHEN prev IS NULL OR timestamp - prev > {SESSION_GAP_S * 1000} THEN 1 ELSE 0 END)
                        OVER (PARTITION BY visitorid ORDER BY timestamp, itemid, event_type
                              ROWS UNBOUNDED PRECEDING)::VARCHAR AS user_session
                    FROM (SELECT *, lag(timestamp) OVER (PARTITION BY visitorid ORDER BY timestamp, itemid,
                                                          event_type) AS prev FROM valid)""")
    con.execute(f"""COPY (SELECT make_timestamp(s.timestamp * 1000)::TIMESTAMPTZ AS event_time, s.event_type,
                                 s.itemid AS product_id, coalesce(c.category_id, 0) AS category_id,
                                 coalesce(p.code, c.category_id::VARCHAR, {sql_literal(S.UNKNOWN_CATEGORY)}) AS category_code,
                                 {sql_literal(S.UNKNOWN_BRAND)} AS brand, 0.0::DOUBLE AS price, s.visitorid AS user_id,
                                 s.user_session
                          FROM sess s LEFT JOIN item_cat c ON c.itemid = s.itemid
                          LEFT JOIN cat_paths p ON p.category_id = c.category_id
                          ORDER BY event_time, user_id, user_session, product_id, event_type)
                    TO {sql_literal(out_dir / EVENTS_FILE)} (FORMAT PARQUET)""")
    no_cat = con.execute("SELECT count(*) FROM valid v LEFT JOIN item_cat c USING (itemid) "
                         "WHERE c.category_id IS NULL").fetchall()[0][0]
    con.close()
    notes = ["RetailRocket has no brands and only hashed prices: brand is unknown_brand and price 0."]
    if not props:
        notes.append("No item_properties*.csv given or found next to events.csv: the store has no categories.")
    elif not tree:
        notes.append("No category_tree.csv: category_code is the bare categoryid, without its parents.")
    return _report(out_dir, source=source, fmt="retailrocket", files=events + props + tree,
                   read=int(parsed) + int(n_bad), kept=int(kept),
                   dropped={"unparsable": int(n_bad), "invalid_value": int(invalid), "no_session": 0,
                            "duplicate": duplicates},
                   samples=samples, brand_unknown=int(kept), code_unknown=int(no_cat), zero_price=int(kept),
                   notes=notes, progress=progress)


# ---- UCI Online Retail --------------------------------------------------------------------------------------

DATE_FORMATS = ("%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%y %H:%M", "%Y-%m-%d %H:%M")


def _read_uci(path: Path) -> pd.DataFrame:
    """One UCI file as strings (dates as datetimes when Excel stored them so), with canonical column names."""
    member, raw = str(path), None
    if path.suffix.lower() == ".zip":  # a few tens of MB at most: read in memory like the plain file
        raw, member = _zip_data(path, whole=True)
    if _is_excel(member):
        df = pd.read_excel(io.BytesIO(raw) if raw is not None else path, dtype=object, engine="openpyxl")
    else:
        if raw is None:
            with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
                raw = f.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:  # the public CSV is ISO-8859-1 (pound signs in descriptions)
            text = raw.decode("latin-1")
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    return df.rename(columns={c: UCI_ALIASES.get(str(c).strip().lower(), str(c).strip()) for c in df.columns})


def _parse_dates(values: pd.Series) -> pd.Series:
    """Excel datetimes as they are; text with the format that parses the most values."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values)
    is_dt = values.map(lambda v: isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat"))
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if is_dt.any():
        out[is_dt] = pd.to_datetime(values[is_dt].astype("datetime64[us]"))
    text = values[~is_dt].astype("string")
    if len(text):
        best = max((pd.to_datetime(text, format=f, errors="coerce") for f in DATE_FORMATS),
                   key=lambda s: s.notna().sum())
        out[~is_dt] = best.astype("datetime64[us]")
    return out


def stock_code_id(code: str) -> int:
    """A stable int64 product id: the StockCode's number when it is all digits, else from its MD5."""
    code = code.strip()
    if re.fullmatch(r"\d{1,15}", code):
        return int(code)
    return 10 ** 16 + int(hashlib.md5(code.encode()).hexdigest()[:12], 16)


def product_names(product_id: pd.Series, stock_code: pd.Series, description: pd.Series) -> pd.DataFrame:
    """One row per product: its stock code and most frequent non-empty description (ties: alphabetical)."""
    df = pd.DataFrame({"product_id": product_id.to_numpy(np.int64), "stock_code": stock_code.astype(str).to_numpy(),
                       "name": [" ".join(str(v).split()) if pd.notna(v) else "" for v in description]})
    counts = df.groupby(list(NAME_COLUMNS), sort=False).size().rename("n").reset_index()
    counts["empty"] = counts["name"] == ""
    counts = counts.sort_values(["product_id", "empty", "n", "name", "stock_code"],
                                ascending=[True, True, False, True, True], kind="stable")
    return counts.drop_duplicates("product_id")[list(NAME_COLUMNS)].reset_index(drop=True)


def ingest_uci(paths: list[Path], out_dir: Path, source: str = "files",
               progress: Progress = no_progress) -> dict[str, Any]:
    """UCI Online Retail files -> ``out_dir/events.parquet`` + ``quality.json``; returns the report."""
    frames = []
    for p in paths:
        try:
            frames.append(_read_uci(p))
        except Exception as exc:
            raise AdapterError(f"{p}: cannot be read as UCI Online Retail ({exc})") from exc
    df = pd.concat(frames, ignore_index=True)
    read = len(df)
    if read == 0:
        raise AdapterError(f"{paths[0]}: the file has a header but no data rows")
    progress(0.4, f"read {read:,} rows")
    invoice = df["InvoiceNo"].astype("string").str.strip()
    code = df["StockCode"].astype("string").str.strip()
    when = _parse_dates(df["InvoiceDate"])
    qty = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce")
    customer = pd.to_numeric(df["CustomerID"], errors="coerce")
    bad = invoice.isna() | code.isna() | when.isna() | qty.isna() | price.isna()
    cancelled = ~bad & invoice.str.upper().str.startswith("C")
    no_customer = ~bad & ~cancelled & customer.isna()
    invalid = ~bad & ~cancelled & ~no_customer & ((qty <= 0) | (price < 0))
    keep = ~(bad | cancelled | no_customer | invalid)
    samples = [{"file": str(paths[0]) if len(paths) == 1 else "", "line": int(i) + 2,
                "error": "unparsable InvoiceDate, Quantity or UnitPrice, or no InvoiceNo/StockCode",
                "content": ",".join(str(v) for v in df.loc[i].tolist())[:300]}
               for i in df.index[bad][:5]]
    ids = code[keep].map(stock_code_id).astype("int64")
    ev = pd.DataFrame({
        S.EVENT_TIME: when[keep].dt.tz_localize("UTC"),
        S.EVENT_TYPE: S.PURCHASE,
        S.PRODUCT_ID: ids,
        S.CATEGORY_ID: np.int64(0),
        S.CATEGORY_CODE: S.UNKNOWN_CATEGORY,
        S.BRAND: S.UNKNOWN_BRAND,
        S.PRICE: price[keep].astype("float64"),
        S.USER_ID: customer[keep].astype("int64"),
        S.USER_SESSION: invoice[keep].astype(str),
    })
    before = len(ev)
    ev = ev.drop_duplicates()
    duplicates = before - len(ev)
    if ev.empty:
        raise AdapterError(f"{paths[0]}: no row survived cleaning (cancelled {int(cancelled.sum()):,}, without "
                           f"CustomerID {int(no_customer.sum()):,}, invalid {int(invalid.sum()):,})")
    S.validate_events(ev, where=str(paths[0]))
    product_names(ids, code[keep], df.loc[keep, "Description"]).to_parquet(
        out_dir / ITEM_NAMES_FILE, index=False)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("ev", ev)
    cols = ", ".join(f"CAST(\"{c}\" AS {S.DUCKDB_TYPES[c]}) AS \"{c}\"" for c in S.EVENT_COLUMNS)
    con.execute(f"""COPY (SELECT {cols} FROM ev ORDER BY event_time, user_id, user_session, product_id, price)
                    TO {sql_literal(out_dir / EVENTS_FILE)} (FORMAT PARQUET)""")
    con.close()
    kept = len(ev)
    return _report(out_dir, source=source, fmt="uci", files=paths, read=read, kept=kept,
                   dropped={"unparsable": int(bad.sum()), "cancelled": int(cancelled.sum()),
                            "no_customer": int(no_customer.sum()), "invalid_value": int(invalid.sum()),
                            "duplicate": int(duplicates)},
                   samples=samples, brand_unknown=kept, code_unknown=kept,
                   zero_price=int((ev[S.PRICE] == 0).sum()),
                   notes=["UCI Online Retail has purchases only (no views or carts), no categories and no brands; "
                          "quantities are not part of the event table (one purchase event per invoice line)."],
                   progress=progress)


# ---- shared -------------------------------------------------------------------------------------------------

def _report(out_dir: Path, *, source: str, fmt: str, files: list[Path], read: int, kept: int,
            dropped: dict[str, int], samples: list[dict], brand_unknown: int, code_unknown: int, zero_price: int,
            notes: list[str], progress: Progress) -> dict[str, Any]:
    """The quality report in the shape recsys.ingest.reader writes, plus the format and what the store lacks."""
    report = {
        "source": source, "format": fmt, "files": [str(p) for p in files], "rows_read": int(read),
        "rows_kept": int(kept), "dropped": dropped,
        "unparsable_by_reason": {"unparsable": dropped.get("unparsable", 0)} if dropped.get("unparsable") else {},
        "unparsable_samples": samples,
        "filled": {"brand_from_product": 0, "brand_from_category": 0, "brand_unknown": int(brand_unknown),
                   "category_code_from_product": 0, "category_code_from_category": 0,
                   "category_code_unknown": int(code_unknown)},
        "price_zero_kept": int(zero_price), "notes": notes,
        "rules": __doc__[__doc__.index("RetailRocket ("):].strip(),
    }
    if report["rows_read"] != report["rows_kept"] + sum(dropped.values()):
        raise AssertionError(f"quality report does not add up: {report['rows_read']} read, {kept} kept, {dropped}")
    write_json(out_dir / QUALITY_FILE, report)
    progress(0.95, f"kept {kept:,} rows")
    return report


def ingest_adapted(paths: list[Path], out_dir: Path, fmt: str, source: str = "files",
                   progress: Progress = no_progress) -> dict[str, Any]:
    """Map files of a detected non-REES46 format into ``out_dir``."""
    if fmt == "retailrocket":
        return ingest_retailrocket(paths, out_dir, source, progress)
    if fmt == "uci":
        return ingest_uci(paths, out_dir, source, progress)
    raise AdapterError(f"unknown store format {fmt!r}")


def build_adapted_events(root: str | os.PathLike | None, paths: list[Path], params: Any, *, force: bool = False,
                         progress: Progress = no_progress) -> tuple[dict, bool]:
    """The events stage for RetailRocket / UCI inputs (called by ``recsys.ingest.reader.build_events``)."""
    paths = [Path(p) for p in paths]
    fmt = detect_format(paths)
    files = paths
    if fmt == "retailrocket":
        ev, props, tree = _retailrocket_files(paths)
        files = ev + props + tree
    fp = fingerprint([file_fingerprint(files), vars(params), fmt])

    def run(tmp: Path, prog: Progress) -> StageResult:
        with _unzipped(paths if fmt == "retailrocket" else [], artifacts_root(root) / "raw") as plain:
            report = ingest_adapted(plain or paths, tmp, fmt, getattr(params, "source", "files"), prog)
            if plain:  # the report names the inputs, not their unpacked copies (gone after the ingest)
                report["files"] = [str(paths[plain.index(Path(f))]) if Path(f) in plain else f
                                   for f in report["files"]]
                write_json(tmp / QUALITY_FILE, report)
        return StageResult(rows={"events": report["rows_kept"], "read": report["rows_read"]},
                           params={"files": [str(p) for p in files], "format": fmt, **vars(params)},
                           extra={"schema": {f.name: str(f.type) for f in S.ARROW_SCHEMA}})

    return run_stage(root, EVENTS_STAGE, run, input_fingerprint=fp, force=force, progress=progress)


@contextlib.contextmanager
def _unzipped(paths: list[Path], raw: Path) -> Iterator[list[Path]]:
    """``paths`` with each .zip replaced by its one CSV, streamed out to a temporary folder under ``raw`` (DuckDB
    reads RetailRocket's CSVs from files) and removed afterwards; [] when no path is a .zip."""
    if not any(p.suffix.lower() == ".zip" for p in paths):
        yield []
        return
    raw.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unzipped-", dir=raw))
    try:
        out = []
        for i, p in enumerate(paths):
            if p.suffix.lower() != ".zip":
                out.append(p)
                continue
            with zipfile.ZipFile(p) as z, z.open(zip_member(z, p)) as src:
                dst = scratch / f"{i}-{p.stem}.csv"  # never the member's own path: nothing lands outside scratch
                with open(dst, "wb") as f:
                    shutil.copyfileobj(src, f, 1 << 22)
            out.append(dst)
        yield out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---- product names, for every consumer ----------------------------------------------------------------------

def load_product_names(root: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """The store's product names (product_id int64, stock_code, name; sorted by product_id), or None when it has
    none (REES46, RetailRocket) or the file fails its check against the events manifest (logged, never raised)."""
    try:
        manifest = read_manifest(root, EVENTS_STAGE)
    except ArtifactError as exc:
        log.warning("product names unavailable: %s", exc)
        return None
    path = stage_dir(root, EVENTS_STAGE) / ITEM_NAMES_FILE
    if manifest is None or ITEM_NAMES_FILE not in (manifest.get("files") or {}):
        if manifest is not None and path.exists():
            log.warning("%s/%s is not in the stage's manifest: ignored", EVENTS_STAGE, ITEM_NAMES_FILE)
        return None
    problem = check_files(root, EVENTS_STAGE, manifest, hashes=True, files=[ITEM_NAMES_FILE])
    if problem is None:
        try:
            df = pd.read_parquet(path, columns=list(NAME_COLUMNS))
            names = pd.DataFrame({"product_id": pd.to_numeric(df["product_id"], errors="raise").astype("int64"),
                                  "stock_code": df["stock_code"].fillna("").astype(str),
                                  "name": df["name"].fillna("").astype(str).map(lambda v: " ".join(v.split()))})
        except Exception as exc:  # pyarrow and pandas raise many kinds; any of them means "no names"
            problem = f"{EVENTS_STAGE}/{ITEM_NAMES_FILE} is unreadable ({type(exc).__name__})"
    if problem:  # the names only decorate: products are still shown, by code and id
        log.warning("product names unavailable (%s): labels fall back to ids; rebuild with "
                    "`python -m recsys build --force`", problem)
        return None
    return names.drop_duplicates("product_id").sort_values("product_id", kind="stable").reset_index(drop=True)
