"""The REES46 reader: CSV files (plain, .gz, .zip) -> the cleaned canonical event table (Parquet) + quality report.

Streaming: DuckDB parses the CSV once into a typed Parquet scratch file (in parallel); ``recsys.ingest.cleaning`` then
streams that file once, in order, into the final table. Neither pass holds the file in memory.

Cleaning rules, each counted in ``quality.json``:
- rows that cannot be parsed (wrong field count, bad timestamp or number, invalid value) are skipped;
  the first few are kept with their line number and content;
- rows with an event_type outside view/cart/purchase/remove_from_cart, a missing event_time, product_id or
  user_id, or a negative or non-finite (nan, inf) price are dropped as invalid;
- rows without ``user_session`` are dropped; exact duplicate rows are dropped (one copy kept);
- a missing ``brand`` is filled from the same product's brand in other rows, else from the category_id's
  brand when that category has exactly one known brand, else ``unknown_brand``; ``category_code`` likewise
  from the product, then the category_id, else ``unknown_category``;
- a price of exactly 0 is kept (the event is real behaviour) and counted; price statistics use price > 0.
"""
from __future__ import annotations

import codecs
import gzip
import logging
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from recsys import schema as S
from recsys.ingest.cleaning import clean_to_parquet
from recsys.artifacts import EVENTS_FILE, Progress, no_progress, sql_literal, write_json

log = logging.getLogger(__name__)

QUALITY_FILE = "quality.json"
SAMPLE_BAD_LINES = 5
DEFAULT_MAX_BAD_FRACTION = 0.05
ROW_GROUP = 1_000_000


class IngestError(ValueError):
    """The input cannot be ingested; the message (one line) says what to fix."""


@dataclass(frozen=True)
class IngestParams:
    """Knobs of the ingest stage."""
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION  # more unparsable rows than this fails the ingest
    memory_limit: str = "3GB"
    threads: int | None = None
    source: str = "files"  # "demo" or "files": shown on the Overview page


# ---- input checks ---------------------------------------------------------------------------------------

def _open_text_head(path: Path) -> bytes:
    """The first 64 KiB of a file's (decompressed) bytes."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read(1 << 16)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            with z.open(zip_member(z, path)) as f:
                return f.read(1 << 16)
    with open(path, "rb") as f:
        return f.read(1 << 16)


def zip_member(z: zipfile.ZipFile, path: Path) -> str:
    """The one data file of a .zip: its single CSV, else its single file (an .xlsx for UCI); IngestError when it
    holds several or none, or a member whose path would leave the archive (absolute, ``..``)."""
    names = [n for n in z.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
    unsafe = [n for n in names if n.startswith(("/", "\\")) or ":" in n or ".." in n.replace("\\", "/").split("/")]
    if unsafe:
        raise IngestError(f"{path}: the .zip holds a path outside the archive ({unsafe[0][:80]}); refused")
    csvs = [n for n in names if n.lower().endswith(".csv")] or names
    if len(csvs) != 1:
        raise IngestError(f"{path}: a .zip must hold exactly one CSV file (found {len(csvs)}); "
                          f"unpack it and give the files one by one")
    return csvs[0]


def read_header(path: Path) -> list[str]:
    """The header's column names, after checks that give one clear line for each kind of bad file."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if path.is_dir():
        raise IngestError(f"{path}: is a directory, expected a CSV file")
    try:
        head = _open_text_head(path)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise IngestError(f"{path}: cannot be read as {path.suffix or 'plain'} file ({exc})") from exc
    if not head.strip():
        raise IngestError(f"{path}: the file is empty; expected a REES46 CSV with a header line")
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if b"\x00" in head:
        raise IngestError(f"{path}: looks binary, not a CSV text file")
    try:
        # the head may end inside a multi-byte character: decode incrementally, never failing on a cut tail
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        line = head[:exc.start].count(b"\n") + 1
        raise IngestError(f"{path}: line {line} has non-UTF-8 bytes; re-encode the file as UTF-8 "
                          f"(e.g. iconv -f latin1 -t utf-8)") from exc
    text = first.decode("utf-8-sig")
    names = _name_columns([c.strip().strip('"') for c in text.split(",")])
    missing = S.missing_columns(names)
    if len(names) == 1 and missing:
        for d, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if d in text:
                raise IngestError(f"{path}: the header is {label}-separated; REES46 files are comma-separated")
        raise IngestError(f"{path}: not a REES46 CSV: the first line '{text[:80]}' is not a comma-separated "
                          f"header with columns {', '.join(S.EVENT_COLUMNS)}")
    if missing:
        raise IngestError(f"{path}: missing required column(s) {', '.join(missing)} "
                          f"(header has: {', '.join(names)})")
    return names


def _name_columns(names: list[str]) -> list[str]:
    """Header names with blank or repeated ones made unique (a pandas export's unnamed index column is blank);
    columns besides the REES46 nine are read as text and ignored."""
    out: list[str] = []
    for i, n in enumerate(names):
        name = n or f"_column{i + 1}"
        while name in out:
            name = f"{name}_{i + 1}"
        out.append(name)
    return out


def check_inputs(paths: list[Path]) -> list[str]:
    """Validate every input's header; all files must share the first file's header."""
    if not paths:
        raise IngestError("no input files given")
    header = read_header(paths[0])
    for p in paths[1:]:
        other = read_header(p)
        if other != header:
            raise IngestError(f"{p}: header differs from {paths[0]} "
                              f"({', '.join(other)} vs {', '.join(header)}); ingest them separately or fix it")
    return header


def unzip_members(paths: list[Path], scratch: Path) -> list[Path]:
    """``paths`` with each .zip replaced by its one data file (:func:`zip_member`), streamed out to ``scratch``
    (DuckDB reads plain and .gz CSV itself, not a zip); the copy is never named after the member's own path, so
    nothing lands outside ``scratch``."""
    out = []
    for i, p in enumerate(paths):
        if p.suffix.lower() == ".zip":
            with zipfile.ZipFile(p) as z, z.open(zip_member(z, p)) as src:
                dst = scratch / f"unzipped-{i}.csv"
                with open(dst, "wb") as f:
                    shutil.copyfileobj(src, f, 1 << 22)
            out.append(dst)
        else:
            out.append(p)
    return out


# ---- the two passes -------------------------------------------------------------------------------------


def _parse_to_parquet(con: duckdb.DuckDBPyConnection, files: list[Path], header: list[str], out: Path,
                      progress: Progress = no_progress) -> None:
    """Pass 1: CSV -> typed Parquet in file order; bad lines go to the ``rej`` table.

    Two helper columns are added while the rows are parsed (in parallel, nearly free): ``_class`` (0 = keep,
    1 = invalid value, 2 = no session) and ``_h``, a hash of the whole row that finds duplicate candidates.
    """
    cols = {c: S.DUCKDB_TYPES.get(c, "VARCHAR") for c in header}
    cols_sql = "{" + ", ".join(f"{sql_literal(k)}: {sql_literal(v)}" for k, v in cols.items()) + "}"
    file_list = "[" + ", ".join(sql_literal(f) for f in files) + "]"
    select = ", ".join(f'"{c}"' for c in S.EVENT_COLUMNS)
    _run_with_progress(con, f"""
        COPY (SELECT {select},
                     (CASE WHEN NOT coalesce({_valid_sql()}, false) THEN 1
                           WHEN user_session IS NULL THEN 2 ELSE 0 END)::UTINYINT AS _class,
                     hash({select}) AS _h
              FROM read_csv({file_list}, header = true, delim = ',', quote = '"',
                            escape = '"', columns = {cols_sql}, union_by_name = false,
                            store_rejects = true, rejects_table = 'rej', rejects_scan = 'rej_scan',
                            filename = false, auto_detect = false))
        TO {sql_literal(out)} (FORMAT PARQUET, ROW_GROUP_SIZE {ROW_GROUP}, COMPRESSION lz4_raw)
    """, progress)


def _run_with_progress(con: duckdb.DuckDBPyConnection, sql: str, progress: Progress) -> None:
    """Run one long statement in a worker thread, reporting DuckDB's own progress estimate every half second
    (the parse of an October-size file takes ~30 s); its error is raised here."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            con.execute(sql)
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="ingest-parse")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
            try:
                pct = con.query_progress()
            except duckdb.Error:
                pct = -1
            if 0 <= pct <= 100:
                progress(pct / 100, f"parsing: {pct:.0f}%")
    except BaseException:  # Ctrl-C or a failing progress callback: stop the statement too
        con.interrupt()
        worker.join()
        raise
    if failure:
        raise failure[0]


def _rejects(con: duckdb.DuckDBPyConnection, shown: list[Path]) -> tuple[int, dict, list]:
    """Rejected lines: how many, how many per reason, and the first few with line number and content."""
    n = con.execute("SELECT count(*) FROM (SELECT DISTINCT file_id, line FROM rej)").fetchall()[0][0]
    by = con.execute("""
        SELECT reason, count(*) FROM (
            SELECT file_id, line, min(error_type || CASE WHEN error_type = 'CAST' THEN ' ' || column_name
                                                    ELSE '' END) AS reason
            FROM rej GROUP BY file_id, line) GROUP BY reason ORDER BY 2 DESC
    """).fetchall()
    rows = con.execute(f"""
        SELECT file_id, line, min(error_type), min(column_name), min(error_message), min(csv_line)
        FROM rej GROUP BY file_id, line ORDER BY file_id, line LIMIT {SAMPLE_BAD_LINES}
    """).fetchall()
    # file ids are per scan, in the order of the file list
    samples = [{"file": str(shown[int(fid)]) if int(fid) < len(shown) else str(fid), "line": int(line),
                "error": f"{etype.lower()} ({col}): {msg}", "content": (csv or "").strip()[:300]}
               for fid, line, etype, col, msg, csv in rows]
    return int(n), {r.lower().replace(" ", "_"): int(c) for r, c in by}, samples


def _valid_sql() -> str:
    types = ", ".join(sql_literal(t) for t in S.EVENT_TYPES)
    return (f"event_type IN ({types}) AND event_time IS NOT NULL AND product_id IS NOT NULL "
            f"AND user_id IS NOT NULL AND category_id IS NOT NULL AND price IS NOT NULL AND isfinite(price) "
            f"AND price >= 0")


def ingest_files(paths: list[Path], out_dir: Path, params: IngestParams = IngestParams(),
                 progress: Progress = no_progress) -> dict[str, Any]:
    """Clean CSV files into ``out_dir/events.parquet`` and ``out_dir/quality.json``; returns the report."""
    paths = [Path(p) for p in paths]
    header = check_inputs(paths)
    progress(0.02, "headers checked")
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=out_dir) as scratch_s:
        scratch = Path(scratch_s)
        files = unzip_members(paths, scratch)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{params.memory_limit}'")
        con.execute(f"SET temp_directory = {sql_literal(scratch / 'spill')}")
        con.execute("SET enable_progress_bar = true")  # progress is tracked (query_progress), never printed
        con.execute("SET enable_progress_bar_print = false")
        if params.threads:
            con.execute(f"SET threads = {int(params.threads)}")
        raw = scratch / "raw.parquet"
        try:
            _parse_to_parquet(con, files, header, raw, lambda f, m: progress(0.02 + 0.43 * f, m))
        except duckdb.Error as exc:
            raise IngestError(explain_read_error(exc, paths)) from exc
        parsed = con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(raw)})").fetchall()[0][0]
        progress(0.45, f"parsed {parsed:,} rows")
        n_bad, bad_by, samples = _rejects(con, paths)
        read = parsed + n_bad
        check_rejects(read, n_bad, bad_by, samples, params, paths)
        counts = clean_to_parquet(con, raw, out_dir / EVENTS_FILE, row_group=ROW_GROUP,
                                  progress=lambda f, m: progress(0.5 + 0.45 * f, m))
        con.close()
    progress(0.95, f"kept {counts['kept']:,} rows")
    if counts["kept"] == 0:
        raise IngestError(f"{paths[0]}: no row survived cleaning ({counts}); check event_type and user_session")
    report = {
        "source": params.source,
        "files": [str(p) for p in paths],
        "rows_read": int(read),
        "rows_kept": counts["kept"],
        "dropped": {"unparsable": n_bad, "invalid_value": counts["invalid"], "no_session": counts["no_session"],
                    "duplicate": counts["duplicates"]},
        "unparsable_by_reason": bad_by,
        "unparsable_samples": samples,
        "filled": {k: counts[k] for k in ("brand_from_product", "brand_from_category", "brand_unknown",
                                          "category_code_from_product", "category_code_from_category",
                                          "category_code_unknown")},
        "price_zero_kept": counts["price_zero_kept"],
        "rules": __doc__.split("Cleaning rules, each counted in ``quality.json``:")[1].strip(),
    }
    assert report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values())
    write_json(out_dir / QUALITY_FILE, report)
    return report


def check_rejects(read: int, n_bad: int, bad_by: dict[str, int], samples: list[dict[str, Any]],
                  params: IngestParams, paths: list) -> None:
    """The ingest's refusals after parsing, for either engine: no data rows, bytes that are not UTF-8, more
    unparsable rows than ``params.max_bad_fraction`` (a sample's ``line`` is None when the engine has none)."""
    if read == 0:
        raise IngestError(f"{paths[0]}: the file has a header but no data rows")
    if "invalid_unicode" in bad_by:
        first = next((s for s in samples if "unicode" in s["error"]), samples[0])
        raise IngestError(f"{first['file']}: {_line_of(first)} has non-UTF-8 bytes; re-encode the file "
                          f"as UTF-8 (e.g. iconv -f latin1 -t utf-8)")
    if n_bad > params.max_bad_fraction * read:
        s = samples[0]
        raise IngestError(
            f"{s['file']}: {n_bad:,} of {read:,} rows cannot be parsed (more than "
            f"{params.max_bad_fraction:.0%}); first{' at ' + _line_of(s) if s.get('line') is not None else ''}: {s['error']} -- content: "
            f"{s['content'][:120]!r}. Expected timestamps like '2019-10-01 00:00:00 UTC' and plain numbers")


def _line_of(sample: dict[str, Any]) -> str:
    return f"line {sample['line']}" if sample.get("line") is not None else "a line"


def explain_read_error(exc: Exception, paths: list[Path | str]) -> str:
    """The one line a reader's failure (DuckDB's, or Spark's message wrapped in an Exception) becomes."""
    msg = str(exc).splitlines()[0]
    if "unicode" in msg.lower() or "utf" in msg.lower():
        return f"{paths[0]}: the file has non-UTF-8 bytes; re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    return f"{paths[0]}: cannot be read as a REES46 CSV: {msg}"
