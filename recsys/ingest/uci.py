"""UCI Online Retail files (CSV or xlsx, plain, .gz or zipped; the "Online Retail II" spellings too) -> the events
stage's ``events.parquet`` + ``quality.json`` + ``item_names.parquet``. The mapping rules are listed in
``recsys.ingest.formats``: one purchase per kept invoice line, the invoice as the session, cancellations, rows
without a customer and invalid quantities or prices dropped and counted, stock codes as product ids.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import EVENTS_FILE, Progress, no_progress, sql_literal
from recsys.ingest.formats import UCI_ALIASES, AdapterError, is_excel, write_report, zip_data

ITEM_NAMES_FILE = "item_names.parquet"
NAME_COLUMNS = ("product_id", "stock_code", "name")

DATE_FORMATS = ("%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%y %H:%M", "%Y-%m-%d %H:%M")


def _read_uci(path: Path) -> pd.DataFrame:
    """One UCI file as strings (dates as datetimes when Excel stored them so), with canonical column names."""
    member, raw = str(path), None
    if path.suffix.lower() == ".zip":  # a few tens of MB at most: read in memory like the plain file
        raw, member = zip_data(path, whole=True)
    if is_excel(member):
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
    ev, names, bad, dropped = _clean(df, paths)
    S.validate_events(ev, where=str(paths[0]))
    names.to_parquet(out_dir / ITEM_NAMES_FILE, index=False)
    _write_events(ev, out_dir / EVENTS_FILE)
    kept = len(ev)
    return write_report(out_dir, source=source, fmt="uci", files=paths, read=read, kept=kept,
                        dropped=dropped, samples=_samples(df, bad, paths), brand_unknown=kept, code_unknown=kept,
                        zero_price=int((ev[S.PRICE] == 0).sum()),
                        notes=["UCI Online Retail has purchases only (no views or carts), no categories and no "
                               "brands; quantities are not part of the event table (one purchase event per invoice "
                               "line)."],
                        progress=progress)


def _clean(df: pd.DataFrame,
           paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, dict[str, int]]:
    """(the canonical events, the product names, the unparsable rows, rows dropped per reason)."""
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
    if ev.empty:
        raise AdapterError(f"{paths[0]}: no row survived cleaning (cancelled {int(cancelled.sum()):,}, without "
                           f"CustomerID {int(no_customer.sum()):,}, invalid {int(invalid.sum()):,})")
    dropped = {"unparsable": int(bad.sum()), "cancelled": int(cancelled.sum()),
               "no_customer": int(no_customer.sum()), "invalid_value": int(invalid.sum()),
               "duplicate": int(before - len(ev))}
    return ev, product_names(ids, code[keep], df.loc[keep, "Description"]), bad, dropped


def _samples(df: pd.DataFrame, bad: pd.Series, paths: list[Path]) -> list[dict]:
    """The first five unparsable rows, as the quality report shows them."""
    return [{"file": str(paths[0]) if len(paths) == 1 else "", "line": int(i) + 2,
             "error": "unparsable InvoiceDate, Quantity or UnitPrice, or no InvoiceNo/StockCode",
             "content": ",".join(str(v) for v in df.loc[i].tolist())[:300]}
            for i in df.index[bad][:5]]


def _write_events(ev: pd.DataFrame, out: Path) -> None:
    """The events in the canonical types and order, to Parquet."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("ev", ev)
        cols = ", ".join(f"CAST(\"{c}\" AS {S.DUCKDB_TYPES[c]}) AS \"{c}\"" for c in S.EVENT_COLUMNS)
        con.execute(f"""COPY (SELECT {cols} FROM ev ORDER BY event_time, user_id, user_session, product_id, price)
                        TO {sql_literal(out)} (FORMAT PARQUET)""")
