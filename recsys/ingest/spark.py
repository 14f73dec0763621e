"""The events stage on Spark: REES46 CSV files (local paths or any URI Spark reads) -> the same cleaned
``events.parquet`` and ``quality.json`` as the DuckDB ingest (``recsys.ingest.reader``), rule for rule.

Two passes, as in DuckDB: the CSV is parsed once into a typed Parquet scratch file (each row with its class and,
when unparsable, its reason), and the cleaning (duplicates, fill maps, the final order) reads only that file.

- Parsing: every column is read as text by Spark's CSV reader (PERMISSIVE, a corrupt-record column that flags
  lines with too few or too many fields) and typed with ``try_cast``: a value that does not parse makes its line
  unparsable (``cast_<column>``, the alphabetically first such column, like DuckDB's report). As in DuckDB, empty
  fields after the last column are ignored, an id written ``1.0`` or ``2.05e+18`` is read as an integer (rounded
  half away from zero), ``nan``/``inf`` are prices (then invalid), ``1.5d``/``0x1p3`` are not.
- Samples of unparsable lines: Spark has no line numbers, so ``line`` is None; a sample names its file and
  content (a typed-but-bad line is rebuilt from its fields, quoting those with a comma or quote).
- Order: each row carries its input position (file, block, row in block) and the output is sorted by
  (event_time, position): DuckDB's order whether or not the input was time-ordered.

Known differences (exotic inputs; see tests/test_spark_events.py::test_known_edge_differences):
- timestamps: DuckDB reads ``... utc`` (lower case), ``24:00:00`` and ``00:00 GMT``, Spark does not; Spark reads
  ``...00UTC``, ``... Z`` and ``... +03:00``, DuckDB does not. Numbers: DuckDB reads ``1_000`` and hex ids.
- quoting: a quoted field with a line break, or a quote left open, is one row to DuckDB (an open quote swallows
  the rest of the file); Spark reads line by line (splittable files), so those lines count as unparsable.
  ``"a"b`` is unparsable to DuckDB, text to Spark.
- encoding: Spark decodes invalid UTF-8 as U+FFFD; a line holding U+FFFD counts as ``invalid_unicode`` and the
  ingest is refused with DuckDB's message (re-encode as UTF-8), so a file that really holds U+FFFD is refused on
  Spark only.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recsys.ingest import reader as ingest
from recsys import schema as S
from recsys.artifacts import EVENTS_FILE, Progress, no_progress, write_json
from recsys.ingest.cleaning import WRITE_OPTIONS
from recsys.ingest.reader import (QUALITY_FILE, ROW_GROUP, SAMPLE_BAD_LINES, IngestError, IngestParams,
                                  check_inputs, explain_read_error, read_header, unzip_members)
from recsys.spark_engine import SparkSpec, is_uri, merge_parts, session

RULES = ingest.__doc__.split("Cleaning rules, each counted in ``quality.json``:")[1].strip()
ROW_BITS = 33  # monotonically_increasing_id: the partition index above bit 33, the row in the partition below
ORDER = ("_f", "_path", "_b", "_r")  # input position: file in the list, file of a glob, block start, row
FILL = {S.BRAND: S.UNKNOWN_BRAND, S.CATEGORY_CODE: S.UNKNOWN_CATEGORY}
BAD_CHAR = "\ufffd"  # what Spark decodes an invalid UTF-8 byte to
_INT = "coalesce(try_cast({v} AS BIGINT), try_cast(try_cast({v} AS DECIMAL(38, 0)) AS BIGINT))"
_DOUBLE = "CASE WHEN {v} NOT RLIKE '(?i)^\\\\s*[+-]?0x|[0-9.]\\\\s*[df]\\\\s*$' THEN try_cast({v} AS DOUBLE) END"
CASTS = {S.EVENT_TIME: "try_cast({v} AS TIMESTAMP)", S.PRODUCT_ID: _INT, S.CATEGORY_ID: _INT, S.USER_ID: _INT,
         S.PRICE: _DOUBLE}


def ingest_files_spark(paths: list[Path | str], out_dir: Path, params: IngestParams = IngestParams(),
                       spec: SparkSpec = SparkSpec(), progress: Progress = no_progress) -> dict[str, Any]:
    """Clean CSV files into ``out_dir/events.parquet`` and ``out_dir/quality.json`` on Spark; returns the report
    (the same keys and figures as :func:`recsys.ingest.reader.ingest_files`)."""
    out_dir = Path(out_dir)
    shown = [str(p) for p in paths]
    with tempfile.TemporaryDirectory(prefix="ingest-spark-", dir=out_dir) as scratch_s:
        scratch = Path(scratch_s)
        header, files = _inputs(spec, list(paths), scratch)
        progress(0.02, "headers checked")
        spark = session(spec)
        parsed = scratch / "parsed"
        with _spark_errors(shown):
            _parse(spark, files, header, parsed)
        src = spark.read.parquet(_read_path(parsed))
        classes, bad_by, samples = _rejects(spark, src, shown)
        n_read, n_bad = sum(classes.values()), classes.get(3, 0)
        progress(0.45, f"parsed {n_read - n_bad:,} rows")
        ingest.check_rejects(n_read, n_bad, bad_by, samples, params, shown)
        counts = _clean(spark, src, out_dir / EVENTS_FILE, scratch, lambda f, m: progress(0.5 + 0.45 * f, m))
    counts = {"parsed": n_read - n_bad, "invalid": classes.get(1, 0), "no_session": classes.get(2, 0),
              "duplicates": counts.pop("duplicates"), "kept": counts.pop("kept"), **counts}  # DuckDB's order
    progress(0.95, f"kept {counts['kept']:,} rows")
    if counts["kept"] == 0:
        (out_dir / EVENTS_FILE).unlink(missing_ok=True)
        raise IngestError(f"{shown[0]}: no row survived cleaning ({counts}); check event_type and user_session")
    report = {
        "source": params.source, "files": shown, "rows_read": n_read, "rows_kept": counts["kept"],
        "dropped": {"unparsable": n_bad, "invalid_value": counts["invalid"], "no_session": counts["no_session"],
                    "duplicate": counts["duplicates"]},
        "unparsable_by_reason": bad_by, "unparsable_samples": samples,
        "filled": {k: counts[k] for k in ("brand_from_product", "brand_from_category", "brand_unknown",
                                          "category_code_from_product", "category_code_from_category",
                                          "category_code_unknown")},
        "price_zero_kept": counts["price_zero_kept"], "rules": RULES,
    }
    assert report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values()), "ingest accounting"
    write_json(out_dir / QUALITY_FILE, report)
    return report


# ---- inputs ---------------------------------------------------------------------------------------------

def _inputs(spec: SparkSpec, paths: list[Path | str], scratch: Path) -> tuple[list[str], list[str]]:
    """The shared header and what Spark reads for each input: local files get ingest's header checks (a .zip is
    unpacked into ``scratch``), URIs the same checks on their first bytes read through Hadoop."""
    if not paths:
        raise IngestError("no input files given")
    local = [Path(p) for p in paths if not is_uri(p)]
    header = check_inputs(local) if local else None
    unpacked = iter(unzip_members(local, scratch))
    files: list[str] = []
    for i, p in enumerate(paths):
        if is_uri(p):
            for name, other in _uri_headers(session(spec), str(p), scratch):
                header = header or other
                if other != header:
                    raise IngestError(f"{name}: header differs from {paths[0]} "
                                      f"({', '.join(other)} vs {', '.join(header)}); ingest them separately or fix it")
            files.append(str(p))
        else:
            files.append(_read_path(_safe_name(next(unpacked), scratch, i)))
    return header, files


def _uri_headers(spark, uri: str, scratch: Path) -> list[tuple[str, list[str]]]:
    """(file, header) of every file a URI (or glob, or folder) names, checked as :func:`ingest.read_header`
    checks a local file: its first 64 KiB (decompressed) are copied to ``scratch`` and read there."""
    if uri.lower().endswith(".zip"):
        raise IngestError(f"{uri}: Spark cannot read a .zip; unpack it or give a local path")
    jvm, conf = spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    out = []
    try:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(conf)
        found = fs.globStatus(path) or []
        files = [s.getPath() for st in found
                 for s in (fs.listStatus(st.getPath()) if st.isDirectory() else [st])
                 if s.isFile() and not s.getPath().getName().startswith(("_", "."))]
        codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
        for n, f in enumerate(files):
            stream, codec = fs.open(f), codecs.getCodec(f)
            stream = codec.createInputStream(stream) if codec else stream
            head = bytes(stream.readNBytes(1 << 16))
            stream.close()
            (scratch / f"head-{n}.csv").write_bytes(head)
            out.append((f.toString(), scratch / f"head-{n}.csv"))
    except Exception as exc:  # py4j: no filesystem for the scheme, permission denied, a broken .gz...
        raise IngestError(f"{uri}: cannot be read by Spark ({_spark_message(exc)})") from exc
    if not out:
        raise IngestError(f"{uri}: no such file")
    checked = []
    for name, head in out:
        try:
            checked.append((name, read_header(head)))
        except IngestError as exc:  # the message names the copy: name the file instead
            raise IngestError(str(exc).replace(str(head), name)) from None
    return checked


def _safe_name(path: Path, scratch: Path, i: int) -> Path:
    """Hadoop cannot open a file whose name holds ':' (its checksum file name is not a valid path): such a file
    is hard-linked (or, across filesystems, copied) into ``scratch`` under a plain name. Not a symlink: Hadoop
    resolves those to the target's name."""
    if ":" not in path.name:
        return path
    link = scratch / f"input-{i}{''.join(path.suffixes[-1:])}"
    try:
        os.link(path, link)
    except OSError:
        shutil.copyfile(path, link)
    return link


def _read_path(path: Path) -> str:
    """A local path as Spark reads it: an absolute file: URI with Hadoop's glob characters escaped (spaces and
    non-ASCII left as they are: Hadoop does not decode %-escapes)."""
    return "file://" + re.sub(r"([\\{}\[\]*?])", r"\\\1", str(Path(path).resolve()))


def _write_path(path: Path) -> str:
    return "file://" + str(Path(path).resolve())


@contextmanager
def _spark_errors(shown: list[str]) -> Iterator[None]:
    """A failure of Spark while reading the inputs (a broken .gz, a vanished file) as one IngestError line."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException
    try:
        yield
    except (PySparkException, Py4JError) as exc:
        raise IngestError(explain_read_error(Exception(_spark_message(exc)), shown)) from exc


def _spark_message(exc: BaseException) -> str:
    """The first line of a Spark error, with the root Java cause when there is one (e.g. EOFException)."""
    msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    try:
        cause = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
        while cause is not None and cause.getCause() is not None:
            cause = cause.getCause()
        root = str(cause.toString()).splitlines()[0][:200] if cause is not None else ""
    except Exception:  # the JVM is gone: the Python message is all there is
        root = ""
    if root and msg.startswith("An error occurred while calling"):  # py4j's wrapper says nothing
        return root
    return f"{msg} ({root})" if root and root not in msg else msg


# ---- pass 1: parse --------------------------------------------------------------------------------------

def _parse(spark, files: list[str], header: list[str], out: Path) -> None:
    """Read every file as text columns with its input position, type the nine columns and classify each row:
    ``_class`` 0 keep, 1 invalid value, 2 no session, 3 unparsable (``_reason``, ``_line``). Written to ``out``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField("_corrupt", StringType())])
    reader = (spark.read.schema(schema).option("header", True).option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", "_corrupt").option("quote", '"').option("escape", '"')
              .option("multiLine", False).option("encoding", "UTF-8"))
    raw = None
    for i, f in enumerate(files):  # one read per input: its index is the file's place in the list
        df = reader.csv(f).select("*", F.lit(i).alias("_f"), F.col("_metadata.file_path").alias("_path"),
                                  F.col("_metadata.file_block_start").alias("_b"),
                                  F.monotonically_increasing_id().bitwiseAND((1 << ROW_BITS) - 1).alias("_r"))
        raw = df if raw is None else raw.unionByName(df)
    spark.sql(_typed_sql(header), raw=raw).write.mode("overwrite").parquet(_write_path(out))


def _typed_sql(header: list[str]) -> str:
    """The typing and classification of ``{raw}`` (see :func:`_parse`), in three steps: typed values (``v_*``),
    the reason a line is unparsable, the class."""
    q = lambda c: f"`{c}`"  # noqa: E731 - header names are quoted identifiers
    typed = ", ".join(f"{CASTS[c].format(v=q(c))} AS v_{c}" if c in CASTS else f"{q(c)} AS v_{c}"
                      for c in S.EVENT_COLUMNS)
    casts = [f"CASE WHEN {q(c)} IS NOT NULL AND v_{c} IS NULL THEN 'cast_{c}' END" for c in sorted(CASTS)]
    bad_char = " OR ".join(f"coalesce(instr({q(c)}, '{BAD_CHAR}') > 0, false)" for c in [*header, "_corrupt"])
    h = len(header)
    # the fields of a malformed line: ""-only fields emptied, quoted fields as Q, so commas split fields
    fields = """split(regexp_replace(regexp_replace(_corrupt, '(^|,)""(?=,|$)', '$1'), '"([^"]|"")*"', 'Q'), ',', -1)"""
    structure = (f"CASE WHEN _fields IS NULL THEN NULL WHEN size(_fields) < {h} THEN 'missing_columns' "
                 f"WHEN size(_fields) > {h} AND exists(slice(_fields, {h + 1}, size(_fields) - {h}), x -> x != '') "
                 f"THEN 'too_many_columns' WHEN exists(_fields, x -> left(x, 1) = '\"') THEN 'unquoted_value' END")
    # (DuckDB ignores empty fields after the last column, as here; its reason is the first alphabetically)
    quoted = ", ".join(f"CASE WHEN {q(c)} IS NULL THEN '' WHEN {q(c)} RLIKE '[,\"]' THEN "
                       f"concat('\"', replace({q(c)}, '\"', '\"\"'), '\"') ELSE {q(c)} END" for c in header)
    line = f"replace(coalesce(_corrupt, concat_ws(',', {quoted})), '{BAD_CHAR}', '?')"
    types = ", ".join(f"'{t}'" for t in S.EVENT_TYPES)
    valid = (f"v_event_type IN ({types}) AND v_event_time IS NOT NULL AND v_product_id IS NOT NULL AND "
             f"v_user_id IS NOT NULL AND v_category_id IS NOT NULL AND v_price IS NOT NULL AND NOT isnan(v_price) "
             f"AND abs(v_price) != double('inf') AND v_price >= 0")
    return f"""
        SELECT {', '.join(f'v_{c} AS {c}' for c in S.EVENT_COLUMNS)}, _class, _reason,
               CASE WHEN _class = 3 THEN {line} END AS _line, {', '.join(ORDER)}
        FROM (SELECT *, CAST(CASE WHEN _reason IS NOT NULL THEN 3 WHEN NOT coalesce({valid}, false) THEN 1
                                  WHEN v_user_session IS NULL THEN 2 ELSE 0 END AS TINYINT) AS _class
              FROM (SELECT *, coalesce({', '.join(casts)}, CASE WHEN {bad_char} THEN 'invalid_unicode' END,
                                       {structure}) AS _reason
                    FROM (SELECT *, {typed}, CASE WHEN _corrupt IS NOT NULL THEN {fields} END AS _fields
                          FROM {{raw}})))"""


def _rejects(spark, src, shown: list[str]) -> tuple[dict[int, int], dict[str, int], list[dict[str, Any]]]:
    """Rows per class, unparsable rows per reason (most first) and the first few unparsable (file, content)."""
    rows = spark.sql("SELECT _class, _reason, count(*) AS n FROM {src} GROUP BY ALL", src=src).collect()
    classes: dict[int, int] = {}
    for r in rows:
        classes[r["_class"]] = classes.get(r["_class"], 0) + int(r["n"])
    bad = sorted((r for r in rows if r["_class"] == 3), key=lambda r: (-r["n"], r["_reason"]))
    first = spark.sql(f"SELECT _f, _path, _reason, _line FROM {{src}} WHERE _class = 3 ORDER BY {', '.join(ORDER)} "
                      f"LIMIT {SAMPLE_BAD_LINES}", src=src).collect()
    samples = [{"file": r["_path"] if _names_many(shown[r["_f"]]) else shown[r["_f"]], "line": None,
                "error": f"cast ({r['_reason'][5:]})" if r["_reason"].startswith("cast_")
                else r["_reason"].replace("_", " "), "content": (r["_line"] or "").strip()[:300]}
               for r in first]
    return classes, {r["_reason"]: int(r["n"]) for r in bad}, samples


def _names_many(path: str) -> bool:
    """True for a URI that may name several files (a glob or a folder): samples then name the file itself."""
    return is_uri(path) and (path.endswith("/") or any(ch in path for ch in "*?[{"))


# ---- pass 2: clean --------------------------------------------------------------------------------------

def _clean(spark, src, out: Path, scratch: Path, progress: Progress) -> dict[str, int]:
    """Drop the rows not kept and the later copies of exact duplicates, fill brand and category_code, write
    ``out`` in (event_time, input position) order; returns the counts of the report."""
    from pyspark import StorageLevel
    cols = ", ".join(S.EVENT_COLUMNS)
    kept = spark.sql(f"SELECT {cols}, {', '.join(ORDER)} FROM {{src}} WHERE _class = 0", src=src)
    # later copies of exact duplicates: only rows whose whole-row hash repeats are compared exactly
    removed = spark.sql(f"""
        SELECT {', '.join(ORDER)} FROM (
            SELECT *, row_number() OVER (PARTITION BY {cols} ORDER BY {', '.join(ORDER)}) AS rn
            FROM (SELECT *, xxhash64({cols}) AS _h FROM {{kept}})
            WHERE _h IN (SELECT xxhash64({cols}) FROM {{kept}} GROUP BY 1 HAVING count(*) > 1))
        WHERE rn > 1""", kept=kept).persist(StorageLevel.MEMORY_AND_DISK)
    combos = spark.sql(f"SELECT product_id, category_id, {', '.join(FILL)}, count(*) AS n FROM {{kept}} GROUP BY ALL",
                       kept=kept).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        progress(0.1, "Spark: fill maps")
        by_product, by_category = _fill_maps(spark, combos)
        filled = ", ".join(f"coalesce(k.{c}, p.p_{c}, c.c_{c}, '{u}') AS {c}" for c, u in FILL.items())
        flags = ", ".join(f"CAST(CASE WHEN k.{c} IS NOT NULL THEN 0 WHEN p.p_{c} IS NOT NULL THEN 1 "
                          f"WHEN c.c_{c} IS NOT NULL THEN 2 ELSE 3 END AS TINYINT) AS _fill_{c}" for c in FILL)
        on = " AND ".join(f"k.{c} = r.{c}" for c in ORDER)
        final = spark.sql(f"""
            SELECT /*+ BROADCAST(p), BROADCAST(c) */ {', '.join(f'k.{c}' for c in S.EVENT_COLUMNS if c not in FILL)},
                   {filled}, {flags}
            FROM {{kept}} k LEFT ANTI JOIN {{removed}} r ON {on}
            LEFT JOIN {{by_product}} p ON p.product_id = k.product_id
            LEFT JOIN {{by_category}} c ON c.category_id = k.category_id
            ORDER BY k.event_time, {', '.join(f'k.{c}' for c in ORDER)}""",
                          kept=kept, removed=removed, by_product=by_product, by_category=by_category)
        parts = scratch / "events-parts"
        progress(0.15, "Spark: cleaning and sorting")
        final.write.mode("overwrite").parquet(_write_path(parts))
        counts = _fill_counts(spark, parts) | {"duplicates": removed.count()}
    finally:
        removed.unpersist()
        combos.unpersist()
    progress(0.8, "merging the part files")
    rows = merge_parts(parts, out, S.ARROW_SCHEMA, row_group=ROW_GROUP, compression=WRITE_OPTIONS["compression"],
                       use_dictionary=WRITE_OPTIONS["use_dictionary"])
    assert rows == counts["kept"], "ingest accounting mismatch"
    return counts


def _fill_maps(spark, combos) -> tuple[Any, Any]:
    """As ``recsys.ingest.cleaning``: product_id -> its most frequent known brand / category_code (ties alphabetical);
    category_id -> the brand / category_code when the category has exactly one known value."""
    best = {c: spark.sql(f"""
        SELECT product_id, {c} AS p_{c} FROM (
            SELECT product_id, {c}, row_number() OVER (PARTITION BY product_id ORDER BY n DESC, {c}) AS k
            FROM (SELECT product_id, {c}, sum(n) AS n FROM {{combos}} WHERE {c} IS NOT NULL GROUP BY ALL))
        WHERE k = 1""", combos=combos) for c in FILL}
    brand, code = (best[c] for c in FILL)
    by_product = spark.sql("SELECT coalesce(b.product_id, c.product_id) AS product_id, b.p_brand, c.p_category_code "
                           "FROM {brand} b FULL JOIN {code} c ON b.product_id = c.product_id", brand=brand, code=code)
    uniq = ", ".join(f"CASE WHEN count(DISTINCT {c}) = 1 THEN min({c}) END AS c_{c}" for c in FILL)
    by_category = spark.sql(f"SELECT category_id, {uniq} FROM {{combos}} GROUP BY category_id", combos=combos)
    return by_product, by_category


def _fill_counts(spark, parts: Path) -> dict[str, int]:
    """Rows kept, zero prices and where each filled value came from: a scan of three narrow part columns."""
    how = {1: "from_product", 2: "from_category", 3: "unknown"}
    sums = [f"count_if(_fill_{c} = {k}) AS {c}_{v}" for c in FILL for k, v in how.items()]
    row = spark.read.parquet(_read_path(parts)).selectExpr("count(*) AS kept", "count_if(price = 0) AS price_zero_kept",
                                                           *sums).collect()[0]
    return {k: int(v) for k, v in row.asDict().items()}
