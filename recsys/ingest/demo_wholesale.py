"""The wholesale demo profile as a file: the simulated purchase log (``recsys.ingest.wholesale_log``) written as a
UCI Online Retail CSV (cancellations, guests, quantities, countries) or as a REES46 CSV (its purchases only).
The same arguments always give a byte-identical file; a file is written under a temporary name and renamed into
place when complete.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys import schema as S
from recsys.artifacts import Progress, no_progress
from recsys.ingest.formats import UCI_COLUMNS
from recsys.ingest.uci import stock_code_id
from recsys.ingest.wholesale_log import (CATEGORY_ID_BASE, COUNTRIES, DEFAULT_LINES, START, PurchaseLog,
                                         build_wholesale_log)

def repeat_share(customer: np.ndarray, item: np.ndarray, minute: np.ndarray) -> float:
    """Share of purchase lines whose item the same customer bought in an earlier invoice."""
    if len(item) == 0:
        return 0.0
    o = np.lexsort((minute, item, customer))
    c, i, m = customer[o], item[o], minute[o]
    again = (c[1:] == c[:-1]) & (i[1:] == i[:-1]) & (m[1:] > m[:-1])
    return float(again.sum() / len(item))


def _stats(log: PurchaseLog, rows: np.ndarray, seed: int, t0: float) -> dict[str, Any]:
    p = ~log.cancel & (log.customer > 0)
    return {"lines": int(rows.sum()), "customers": len(np.unique(log.customer[rows & (log.customer > 0)])),
            "products": len(np.unique(log.item[rows])), "invoices": len(np.unique(log.invoice[rows])),
            "cancelled_lines": int((rows & log.cancel).sum()),
            "no_customer_lines": int((rows & (log.customer == 0)).sum()),
            "repeat_share": round(repeat_share(log.customer[p], log.item[p], log.minute[p]), 4),
            "period": [str(START + int(log.minute.min() // 1440)), str(START + int(log.minute.max() // 1440))],
            "seed": seed, "seconds": round(time.perf_counter() - t0, 2)}


@contextlib.contextmanager
def _atomic_sink(path: Path) -> Iterator[Any]:
    """A binary file written under a temporary name in the same folder, renamed into place when complete."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    gz = path.name.endswith(".gz")  # then mtime 0 and no name: deterministic bytes
    try:
        with open(tmp, "wb") as raw, (gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if gz
                                      else contextlib.nullcontext(raw)) as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _per_invoice(log: PurchaseLog, rows: np.ndarray, fmt: Callable[[int, Any], str]) -> pa.Array:
    """``fmt(invoice number, datetime)`` computed once per invoice, taken for each of ``rows``."""
    numbers, first, idx = np.unique(log.invoice[rows], return_index=True, return_inverse=True)
    when = (np.datetime64(START, "m") + log.minute[rows][first]).astype(object)
    return pc.take(pa.array([fmt(int(n), w) for n, w in zip(numbers, when)], pa.string()), pa.array(idx))


def _uci_columns(log: PurchaseLog, rows: np.ndarray, seed: int) -> list[pa.Array]:
    cat, item = log.catalog, log.item
    invoice = _per_invoice(log, rows, lambda n, w: f"{n}")
    return [pc.if_else(pa.array(log.cancel), pc.binary_join_element_wise("C", invoice, ""), invoice),
            pc.take(pa.array(cat.code), item), pc.take(pa.array(cat.name), item), pa.array(log.quantity),
            _per_invoice(log, rows, lambda n, w: f"{w.month}/{w.day}/{w.year} {w.hour}:{w.minute:02d}"),
            pa.array(log.price), pa.array(log.customer, mask=log.customer == 0),
            pc.take(pa.array([c for c, _ in COUNTRIES]), log.country)]


def _rees46_columns(log: PurchaseLog, rows: np.ndarray, seed: int) -> list[pa.Array]:
    cat, item, n = log.catalog, log.item[rows], int(rows.sum())
    pid = np.array([stock_code_id(c) for c in cat.code], np.int64)  # the ids the UCI adapter gives
    return [_per_invoice(log, rows, lambda n, w: f"{w:%Y-%m-%d %H:%M:%S} UTC"), pa.array(np.full(n, "purchase")),
            pa.array(pid[item]), pa.array(CATEGORY_ID_BASE + cat.dept[item]),
            pc.take(pa.array(cat.depts), cat.dept[item]), pa.nulls(n, pa.string()), pa.array(log.price[rows]),
            pa.array(log.customer[rows]), _per_invoice(log, rows, lambda n, w: _uuid(seed, n))]


def _uuid(seed: int, invoice: int) -> str:
    """A version-4-looking UUID for an invoice."""
    x = bytearray(hashlib.sha256(f"{seed}/{invoice}".encode()).digest()[:16])
    x[6], x[8] = 0x40 | (x[6] & 15), 0x80 | (x[8] & 63)
    h = x.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _write(path: Path, header: tuple[str, ...], columns: Callable, purchases_only: bool, lines: int, seed: int,
           progress: Progress, sizes: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    log = build_wholesale_log(lines, seed, **sizes)
    progress(.6, f"simulated {len(log.item):,} lines")
    rows = ~log.cancel & (log.customer > 0) if purchases_only else np.ones(len(log.item), bool)
    buf = pa.BufferOutputStream()
    pacsv.write_csv(pa.Table.from_arrays(columns(log, rows, seed), names=list(header)), buf,
                    pacsv.WriteOptions(include_header=False, quoting_style="none"))  # no field holds a comma
    with _atomic_sink(Path(path)) as f:
        f.write((",".join(header) + "\n").encode())
        f.write(buf.getvalue())
    progress(1.0, f"wrote {int(rows.sum()):,} lines")
    return _stats(log, rows, seed, t0)


def write_wholesale_uci(path: Path, lines: int = DEFAULT_LINES, seed: int = 7, progress: Progress = no_progress,
                        **sizes: Any) -> dict[str, Any]:
    """Write the wholesale store as a UCI Online Retail CSV; ``sizes`` go to :func:`build_wholesale_log`."""
    return _write(path, UCI_COLUMNS, _uci_columns, False, lines, seed, progress, sizes)


def write_wholesale_rees46(path: Path, lines: int = DEFAULT_LINES, seed: int = 7, progress: Progress = no_progress,
                           **sizes: Any) -> dict[str, Any]:
    """Write the same store's purchases as a REES46 CSV: no cancellations, guests or quantities; no views."""
    return _write(path, S.EVENT_COLUMNS, _rees46_columns, True, lines, seed, progress, sizes)
