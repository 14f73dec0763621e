"""Which store format a set of files is (from their headers), and the quality report every adapter writes.

``detect_format`` reads only the header of each input: ``rees46`` (and anything unrecognised, so that its errors
stay the REES46 ones, ``recsys.ingest.reader``), ``retailrocket`` (``recsys.ingest.retailrocket``) or ``uci``
(``recsys.ingest.uci``). Both adapters write the events stage's ``events.parquet`` + ``quality.json`` in the
reader's shape (rows read = rows kept + every drop) through :func:`write_report`, whose ``rules`` are these:

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

import csv
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

from recsys import schema as S
from recsys.artifacts import Progress, write_json
from recsys.ingest.reader import QUALITY_FILE, zip_member

RR_EVENTS = {"timestamp", "visitorid", "event", "itemid", "transactionid"}
RR_PROPERTIES = {"timestamp", "itemid", "property", "value"}
RR_TREE = {"categoryid", "parentid"}
UCI_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
               "Country")
UCI_ALIASES = {"invoice": "InvoiceNo", "invoiceno": "InvoiceNo", "stockcode": "StockCode",
               "description": "Description", "quantity": "Quantity", "invoicedate": "InvoiceDate",
               "unitprice": "UnitPrice", "price": "UnitPrice", "customerid": "CustomerID",
               "customer id": "CustomerID", "country": "Country"}
# the mapping rules of both formats, recorded in every adapted store's quality report
RULES = __doc__[__doc__.index("RetailRocket ("):].strip()


class AdapterError(ValueError):
    """An input of a recognised store format cannot be mapped; the message says what to fix."""


# ---- detection --------------------------------------------------------------------------------------------

def is_excel(name: str | Path) -> bool:
    return str(name).lower().endswith((".xlsx", ".xlsm"))


def zip_data(path: Path, whole: bool) -> tuple[bytes, str]:
    """(bytes, member name) of a .zip's one data file (``recsys.ingest.reader.zip_member``): all of it, or its first
    line when ``whole`` is False and it is not an Excel file."""
    with zipfile.ZipFile(path) as z:
        member = zip_member(z, path)
        with z.open(member) as f:
            return (f.read() if whole or is_excel(member) else f.readline(1 << 16)), member


def read_header_names(path: Path) -> list[str]:
    """Column names of a CSV (plain, .gz or the one CSV of a .zip) or the first sheet of an .xlsx (also zipped);
    [] when unreadable."""
    try:
        member, data = str(path), None
        if path.suffix.lower() == ".zip":
            data, member = zip_data(path, whole=False)
        if is_excel(member):
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


def retailrocket_files(paths: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
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



# ---- the report -------------------------------------------------------------------------------------------

def write_report(out_dir: Path, *, source: str, fmt: str, files: list[Path], read: int, kept: int,
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
        "rules": RULES,
    }
    if report["rows_read"] != report["rows_kept"] + sum(dropped.values()):
        raise AssertionError(f"quality report does not add up: {report['rows_read']} read, {kept} kept, {dropped}")
    write_json(out_dir / QUALITY_FILE, report)
    progress(0.95, f"kept {kept:,} rows")
    return report
