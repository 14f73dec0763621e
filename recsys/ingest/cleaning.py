"""The cleaning pass of ingest: the parsed scratch Parquet -> the cleaned, filled, de-duplicated events file.

The scratch file (``recsys.ingest.reader`` pass 1) holds the canonical columns plus ``_class`` (0 = keep, 1 = invalid
value, 2 = no session) and ``_h`` (a hash of the whole row). DuckDB finds what is global and small: the row
numbers of duplicate copies and the fill maps. The rows are then streamed once, row group by row group in file
order, through vectorised lookups (pyarrow/numpy, two threads) and written in that order: no join and no sort
over the whole table, and the same input gives the same file.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys import schema as S
from recsys.artifacts import sql_literal

# The events file: dictionary pages for every column but the (nearly unique) session ids, where they only cost time.
WRITE_OPTIONS = {"compression": "snappy", "use_dictionary": [c for c in S.EVENT_COLUMNS if c != S.USER_SESSION]}



def clean_to_parquet(con: duckdb.DuckDBPyConnection, raw: Path, out: Path, *, row_group: int,
                     progress: Callable[[float, str], None] = lambda f, m: None) -> dict[str, int]:
    """Drop invalid / session-less / duplicate rows of ``raw``, fill brand and category_code, write ``out``.

    Rows keep the input order, which for REES46 files is time order; an input that is not time-ordered is sorted
    by time afterwards (ties in input order). Returns the row counts and fill counts of the quality report.
    ``progress(fraction, message)`` hears of each step (fractions of this pass, 0-1).
    """
    con.execute(f"CREATE TEMP VIEW src AS SELECT * FROM read_parquet({sql_literal(raw)}, file_row_number = true)")
    parsed, invalid, no_session = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE _class = 1), count(*) FILTER (WHERE _class = 2)
        FROM src""").fetchall()[0]
    removed = _duplicate_copies(con)
    progress(0.15, f"{len(removed):,} duplicate copies found")
    fills = _fill_maps(con)
    progress(0.2, "fill maps built")
    stats = _stream_clean(raw, out, removed, fills, row_group,
                          lambda f, m: progress(0.2 + 0.75 * f, m))
    if not stats.pop("time_sorted"):
        progress(0.95, "input not in time order: sorting")
        sorted_out = out.with_name("sorted-" + out.name)
        con.execute(f"""COPY (SELECT * EXCLUDE (file_row_number) FROM read_parquet({sql_literal(out)}, file_row_number = true)
                              ORDER BY event_time, file_row_number)
                        TO {sql_literal(sorted_out)} (FORMAT PARQUET, ROW_GROUP_SIZE {row_group})""")
        sorted_out.replace(out)
    duplicates = len(removed)
    kept = int(parsed) - int(invalid) - int(no_session) - duplicates
    assert kept == stats.pop("kept"), "ingest accounting mismatch"
    return {"parsed": int(parsed), "invalid": int(invalid), "no_session": int(no_session),
            "duplicates": duplicates, "kept": kept, **stats}


def _duplicate_copies(con: duckdb.DuckDBPyConnection) -> np.ndarray:
    """Row numbers of every exact duplicate after its first occurrence in the file (sorted int64 array).

    Only rows whose whole-row hash occurs more than once (few) are compared exactly, so the table is never
    de-duplicated as a whole. Duplicates have the same validity, so only kept-class rows are considered.
    """
    cols = ", ".join(f'"{c}"' for c in S.EVENT_COLUMNS)
    return con.execute(f"""
        WITH dup_hash AS (SELECT _h FROM src WHERE _class = 0 GROUP BY _h HAVING count(*) > 1)
        SELECT file_row_number FROM (
            SELECT file_row_number, row_number() OVER (PARTITION BY {cols} ORDER BY file_row_number) AS rn
            FROM src WHERE _class = 0 AND _h IN (SELECT _h FROM dup_hash))
        WHERE rn > 1 ORDER BY file_row_number""").fetchnumpy()["file_row_number"].astype("int64")


@dataclass(frozen=True)
class Lookup:
    """Values by sorted integer key (built once; looked up for every row group)."""
    keys: np.ndarray
    values: pa.Array

    @classmethod
    def of(cls, table: pa.Table, key: str, value: str) -> "Lookup":
        return cls(table.column(key).to_numpy(), table.column(value).combine_chunks())

    def get(self, ids: np.ndarray) -> pa.Array:
        """The value of each id; null where an id is absent."""
        if len(self.keys) == 0:
            return pa.nulls(len(ids), self.values.type)
        pos, found = S.find_sorted(self.keys, ids)
        out = self.values.take(pa.array(pos))
        return out if found.all() else pc.if_else(pa.array(found), out, pa.scalar(None, out.type))


def _fill_maps(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Lookup, Lookup]]:
    """product_id -> most frequent known brand / category_code (ties: alphabetical, so builds are reproducible);
    category_id -> brand / category_code when exactly one is known. Per filled column: (by product, by category)."""
    con.execute("""CREATE TEMP TABLE combos AS SELECT product_id, category_id, brand, category_code, count(*) AS n
                   FROM src WHERE _class = 0 GROUP BY ALL""")
    prod = con.sql("""
        WITH pb AS (SELECT product_id, first(brand ORDER BY n DESC, brand) AS p_brand FROM (
                        SELECT product_id, brand, sum(n) AS n FROM combos WHERE brand IS NOT NULL GROUP BY ALL)
                    GROUP BY product_id),
             pc AS (SELECT product_id, first(category_code ORDER BY n DESC, category_code) AS p_code FROM (
                        SELECT product_id, category_code, sum(n) AS n FROM combos
                        WHERE category_code IS NOT NULL GROUP BY ALL)
                    GROUP BY product_id)
        SELECT p.product_id, pb.p_brand, pc.p_code FROM (SELECT DISTINCT product_id FROM combos) p
        LEFT JOIN pb USING (product_id) LEFT JOIN pc USING (product_id) ORDER BY p.product_id""").to_arrow_table()
    cat = con.sql("""
        SELECT category_id, CASE WHEN count(DISTINCT brand) = 1 THEN min(brand) END AS c_brand,
               CASE WHEN count(DISTINCT category_code) = 1 THEN min(category_code) END AS c_code
        FROM combos GROUP BY category_id ORDER BY category_id""").to_arrow_table()
    return {S.BRAND: (Lookup.of(prod, S.PRODUCT_ID, "p_brand"), Lookup.of(cat, S.CATEGORY_ID, "c_brand")),
            S.CATEGORY_CODE: (Lookup.of(prod, S.PRODUCT_ID, "p_code"), Lookup.of(cat, S.CATEGORY_ID, "c_code"))}


def _stream_clean(raw: Path, out: Path, removed: np.ndarray, fills: dict[str, tuple[Lookup, Lookup]],
                  row_group: int, progress: Callable[[float, str], None]) -> dict[str, Any]:
    """Stream ``raw`` row group by row group, in order: drop the rows not kept, fill, write ``out``.

    Two worker threads prepare row groups (pyarrow and numpy release the GIL) while this thread writes them in
    file order. Returns the rows kept, the fill counts, the zero-price count and whether time never decreases.
    """
    meta = pq.ParquetFile(raw).metadata
    starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    local = threading.local()

    def prepare(i: int) -> tuple[pa.Table, dict[str, int]]:
        if not hasattr(local, "file"):
            local.file = pq.ParquetFile(raw)
        t = local.file.read_row_group(i, columns=[*S.EVENT_COLUMNS, "_class"], use_threads=False)
        keep = t.column("_class").to_numpy() == 0
        lo, hi = np.searchsorted(removed, [starts[i], starts[i + 1]])
        keep[removed[lo:hi] - starts[i]] = False
        t = t.drop_columns(["_class"])
        t = (t if keep.all() else t.filter(keep)).combine_chunks()
        counts = {"kept": t.num_rows, "price_zero_kept": int(np.count_nonzero(t.column(S.PRICE).to_numpy() == 0))}
        for col, unknown in ((S.BRAND, S.UNKNOWN_BRAND), (S.CATEGORY_CODE, S.UNKNOWN_CATEGORY)):
            filled, (n_product, n_category, n_unknown) = _fill(t, col, *fills[col], unknown)
            t = t.set_column(t.schema.get_field_index(col), col, filled)
            counts |= {f"{col}_from_product": n_product, f"{col}_from_category": n_category,
                       f"{col}_unknown": n_unknown}
        return t.cast(S.ARROW_SCHEMA), counts

    totals: dict[str, Any] = {"kept": 0, "price_zero_kept": 0, "time_sorted": True} | {
        f"{col}_{how}": 0 for col in (S.BRAND, S.CATEGORY_CODE) for how in ("from_product", "from_category", "unknown")}
    last, done = None, 0

    def write(table: pa.Table, counts: dict[str, int]) -> None:
        nonlocal last, done
        for k, v in counts.items():
            totals[k] += v
        if table.num_rows:
            times = table.column(S.EVENT_TIME).cast(pa.int64()).to_numpy()
            if (last is not None and times[0] < last) or bool(np.any(times[1:] < times[:-1])):
                totals["time_sorted"] = False
            last = times[-1]
            writer.write_table(table, row_group_size=row_group)
        done += 1
        progress(done / meta.num_row_groups, f"cleaned {totals['kept']:,} rows")

    with pq.ParquetWriter(out, S.ARROW_SCHEMA, **WRITE_OPTIONS) as writer, ThreadPoolExecutor(2) as pool:
        pending: deque = deque()
        for i in range(meta.num_row_groups):
            pending.append(pool.submit(prepare, i))
            if len(pending) > 2:  # two row groups in flight ahead of the writer
                write(*pending.popleft().result())
        while pending:
            write(*pending.popleft().result())
    return totals


def _fill(t: pa.Table, col: str, by_product_id: Lookup, by_category_id: Lookup, unknown: str):
    """``col`` with its nulls filled from the product map, else the category map, else ``unknown``; and how many
    values came from each."""
    values = t.column(col).combine_chunks()
    n = values.null_count
    if n == 0:
        return values, (0, 0, 0)
    missing = values.is_null()
    mask = missing.to_numpy(zero_copy_only=False)
    by_product = by_product_id.get(t.column(S.PRODUCT_ID).to_numpy()[mask])
    by_category = by_category_id.get(t.column(S.CATEGORY_ID).to_numpy()[mask])
    fill = pc.coalesce(by_product, by_category, pa.scalar(unknown, values.type))
    from_product = n - by_product.null_count
    from_category = int(pc.sum(pc.and_(by_product.is_null(), by_category.is_valid())).as_py() or 0)
    return pc.replace_with_mask(values, missing, fill), (from_product, from_category, n - from_product - from_category)
