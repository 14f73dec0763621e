"""The events stage on Spark: REES46 CSV files (local paths or any URI Spark reads) -> the same cleaned
``events.parquet`` and ``quality.json`` as the DuckDB ingest (``recsys.ingest``), rule for rule.

- Parsing: every column is read as text with Spark's CSV reader (PERMISSIVE, a corrupt-record column), which
  flags lines with too few or too many fields; values are then typed with ``try_cast``, so a value that does not
  parse makes its line unparsable (``cast_<column>``) as in DuckDB. Spark gives no line numbers: a sample names
  its file and content. One known difference: DuckDB reads an id written as ``1.0`` as 1, Spark calls it
  unparsable (REES46 ids are plain integers).
- Order: each row carries its input position (file, block, row in block), and the output is sorted by
  (event_time, position): DuckDB's order whether or not the input was time-ordered.
- Duplicates and fill maps follow ``recsys.cleaning``: only rows whose whole-row hash repeats are compared
  exactly (the first copy is kept); fill maps come from the kept rows before de-duplication.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from recsys import schema as S
from recsys.artifacts import EVENTS_FILE, Progress, no_progress, write_json
from recsys.cleaning import WRITE_OPTIONS
from recsys.ingest import (QUALITY_FILE, ROW_GROUP, SAMPLE_BAD_LINES, IngestError, IngestParams, _materialise,
                           _name_columns, check_inputs)
from recsys.ingest import __doc__ as INGEST_DOC
from recsys.spark_engine import SparkSpec, _uri, is_uri, merge_parts, session

TYPES = {S.EVENT_TIME: "TIMESTAMP", S.PRODUCT_ID: "BIGINT", S.CATEGORY_ID: "BIGINT", S.PRICE: "DOUBLE",
         S.USER_ID: "BIGINT"}
ROW_BITS = 33  # monotonically_increasing_id: partition index above bit 33, row within the partition below
FILL = {S.BRAND: S.UNKNOWN_BRAND, S.CATEGORY_CODE: S.UNKNOWN_CATEGORY}


def ingest_files_spark(paths: list[Path | str], out_dir: Path, params: IngestParams = IngestParams(),
                       spec: SparkSpec = SparkSpec(), progress: Progress = no_progress) -> dict[str, Any]:
    """Clean CSV files into ``out_dir/events.parquet`` and ``out_dir/quality.json`` on Spark; returns the report
    (the same keys and figures as :func:`recsys.ingest.ingest_files`)."""
    local = [Path(p) for p in paths if not is_uri(p)]
    header = check_inputs(local) if len(local) == len(paths) else None
    progress(0.02, "headers checked")
    with tempfile.TemporaryDirectory(prefix="ingest-spark-", dir=out_dir) as scratch_s:
        scratch = Path(scratch_s)
        files = _materialise(local, scratch) if header else [str(p) for p in paths]
        spark = session(spec)
        header = header or _uri_header(spark, str(paths[0]))
        progress(0.05, "Spark: reading the files")
        _typed_view(spark, [_uri(f) for f in files], header, scratch)
        n_read, n_bad, bad_by, samples = _rejects(spark, [str(p) for p in paths])
        _check_rejects(n_read, n_bad, bad_by, samples, params, paths)
        progress(0.3, f"read {n_read:,} rows")
        counts = _clean(spark, out_dir / EVENTS_FILE, scratch, progress)
        for name in ("src", "kept"):
            spark.catalog.dropTempView(name)
    progress(0.95, f"kept {counts['kept']:,} rows")
    if counts["kept"] == 0:
        raise IngestError(f"{paths[0]}: no row survived cleaning ({counts}); check event_type and user_session")
    report = {
        "source": params.source, "files": [str(p) for p in paths], "rows_read": n_read,
        "rows_kept": counts["kept"],
        "dropped": {"unparsable": n_bad, "invalid_value": counts["invalid"], "no_session": counts["no_session"],
                    "duplicate": counts["duplicates"]},
        "unparsable_by_reason": bad_by, "unparsable_samples": samples,
        "filled": {k: counts[k] for k in ("brand_from_product", "brand_from_category", "brand_unknown",
                                          "category_code_from_product", "category_code_from_category",
                                          "category_code_unknown")},
        "price_zero_kept": counts["price_zero_kept"],
        "rules": INGEST_DOC.split("Cleaning rules, each counted in ``quality.json``:")[1].strip(),
    }
    assert report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values()), "ingest accounting"
    write_json(out_dir / QUALITY_FILE, report)
    return report


def _uri_header(spark, uri: str) -> list[str]:
    """The header of a file only Spark can read, with the same column checks as a local file's."""
    try:
        first = spark.read.text(uri).first()
    except Exception as exc:  # py4j: path not found, no filesystem for the scheme...
        raise IngestError(f"{uri}: cannot be read by Spark ({str(exc).splitlines()[0][:200]})") from exc
    if first is None:
        raise IngestError(f"{uri}: the file is empty; expected a REES46 CSV with a header line")
    names = _name_columns([c.strip().strip('"') for c in first[0].lstrip("\ufeff").split(",")])
    missing = S.missing_columns(names)
    if missing:
        raise IngestError(f"{uri}: missing required column(s) {', '.join(missing)} (header has: {', '.join(names)})")
    return names


def _typed_view(spark, uris: list[str], header: list[str], scratch: Path) -> None:
    """Temp view ``src``: the nine typed columns, ``_order`` (input position), ``_class`` (0 keep, 1 invalid
    value, 2 no session, 3 unparsable), ``_reason``, ``_file`` and ``_line`` (the raw text of an unparsable one)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType
    schema = StructType([StructField(c, StringType()) for c in header] + [StructField("_corrupt", StringType())])
    df = (spark.read.schema(schema).option("header", True).option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", "_corrupt").option("quote", '"').option("escape", '"')
          .option("multiLine", False).option("encoding", "UTF-8").csv(uris))
    # Spark names a local file file:/x where the list says file:///x: compare the paths without the scheme
    file_index = F.create_map(*[x for i, u in enumerate(uris) for x in (F.lit(_bare(u)), F.lit(i))])
    df = df.select("*", F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "/").alias("_path"),
                   F.col("_metadata.file_block_start").alias("_block"),
                   (F.monotonically_increasing_id().bitwiseAND((1 << ROW_BITS) - 1)).alias("_row"))
    df = df.withColumn("_fileno", F.coalesce(file_index[F.col("_path")], F.lit(len(uris))))
    df.createOrReplaceTempView("raw")
    typed = ", ".join(f"try_cast(`{c}` AS {TYPES[c]}) AS {c}" if c in TYPES else f"`{c}` AS {c}"
                      for c in S.EVENT_COLUMNS)
    casts = [f"CASE WHEN `{c}` IS NOT NULL AND try_cast(`{c}` AS {TYPES[c]}) IS NULL THEN 'cast_{c}' END"
             for c in sorted(TYPES)]  # the alphabetically first failing column, as DuckDB's min(reason)
    fields = "size(split(regexp_replace(_corrupt, '\"([^\"]|\"\")*\"', ''), ',', -1))"
    # DuckDB reads a line with one empty field too many (a trailing comma) as a whole row: so does this
    malformed = f"_corrupt IS NOT NULL AND NOT ({fields} = {len(header) + 1} AND _corrupt LIKE '%,')"
    reason = (f"CASE WHEN {malformed} THEN CASE WHEN {fields} < {len(header)} THEN 'missing_columns' "
              f"ELSE 'too_many_columns' END ELSE coalesce({', '.join(casts)}) END")
    types = ", ".join(f"'{t}'" for t in S.EVENT_TYPES)
    valid = (f"event_type IN ({types}) AND event_time IS NOT NULL AND product_id IS NOT NULL AND user_id IS NOT "
             f"NULL AND category_id IS NOT NULL AND price IS NOT NULL AND NOT isnan(price) AND "
             f"price NOT IN (double('inf'), double('-inf')) AND price >= 0")
    raw_line = "coalesce(_corrupt, concat_ws(',', " + ", ".join(f"coalesce(`{c}`, '')" for c in header) + "))"
    # parsed once into a typed scratch Parquet (the CSV is the slow part; every later step reads columns of this)
    parsed = _uri(scratch / "parsed")
    spark.sql(f"""
        SELECT * EXCEPT (_file, _line), CASE WHEN _class = 3 THEN _file END AS _file,
               CASE WHEN _class = 3 THEN _line END AS _line
        FROM (SELECT *, CASE WHEN _reason IS NOT NULL THEN 3 WHEN NOT coalesce({valid}, false) THEN 1
                             WHEN user_session IS NULL THEN 2 ELSE 0 END AS _class
              FROM (SELECT {typed}, {reason} AS _reason, _fileno, _path AS _file, {raw_line} AS _line,
                           named_struct('f', _fileno, 'b', _block, 'r', _row) AS _order FROM raw))""") \
        .write.mode("overwrite").parquet(parsed)
    spark.catalog.dropTempView("raw")
    spark.read.parquet(parsed).createOrReplaceTempView("src")


def _bare(uri: str) -> str:
    return "/" + uri[len("file:"):].lstrip("/") if uri.startswith("file:") else uri


def _rejects(spark, shown: list[str]) -> tuple[int, int, dict[str, int], list[dict[str, Any]]]:
    """Rows read, rows unparsable, unparsable per reason, and the first few (file and content)."""
    by = spark.sql("SELECT _reason, count(*) AS n FROM src WHERE _class = 3 GROUP BY _reason").collect()
    n_read = int(spark.sql("SELECT count(*) FROM src").collect()[0][0])
    bad_by = {r["_reason"]: int(r["n"]) for r in sorted(by, key=lambda r: (-r["n"], r["_reason"]))}
    first = spark.sql(f"SELECT _fileno, _file, _reason, _line FROM src WHERE _class = 3 ORDER BY _order "
                      f"LIMIT {SAMPLE_BAD_LINES}").collect()
    samples = [{"file": shown[r["_fileno"]] if r["_fileno"] < len(shown) else r["_file"], "line": None,
                "error": f"cast ({r['_reason'][5:]})" if r["_reason"].startswith("cast_")
                else r["_reason"].replace("_", " "), "content": (r["_line"] or "").strip()[:300]}
               for r in first]
    return n_read, sum(bad_by.values()), bad_by, samples


def _check_rejects(n_read: int, n_bad: int, bad_by: dict, samples: list, params: IngestParams,
                   paths: list) -> None:
    """The DuckDB ingest's refusals: no data rows, too many unparsable rows."""
    if n_read == 0:
        raise IngestError(f"{paths[0]}: the file has a header but no data rows")
    if n_bad > params.max_bad_fraction * n_read:
        s = samples[0]
        raise IngestError(
            f"{s['file']}: {n_bad:,} of {n_read:,} rows cannot be parsed (more than {params.max_bad_fraction:.0%}); "
            f"first: {s['error']} -- content: {s['content'][:120]!r}. Expected timestamps like "
            f"'2019-10-01 00:00:00 UTC' and plain numbers")


def _clean(spark, out: Path, scratch: Path, progress: Progress) -> dict[str, int]:
    """Drop invalid, session-less and duplicate rows, fill brand and category_code, write ``out`` in order."""
    cols = ", ".join(S.EVENT_COLUMNS)
    spark.sql(f"SELECT {cols}, _order, xxhash64({cols}) AS _h FROM src WHERE _class = 0") \
        .createOrReplaceTempView("kept")
    classes = {r["_class"]: int(r["n"]) for r in
               spark.sql("SELECT _class, count(*) AS n FROM src WHERE _class IN (1, 2) GROUP BY _class").collect()}
    # later copies of exact duplicates: compare only the rows whose whole-row hash repeats
    spark.sql(f"""
        SELECT _order FROM (
            SELECT _order, row_number() OVER (PARTITION BY {cols} ORDER BY _order) AS rn
            FROM kept WHERE _h IN (SELECT _h FROM kept GROUP BY _h HAVING count(*) > 1))
        WHERE rn > 1""").createOrReplaceTempView("removed")
    progress(0.45, "Spark: fill maps")
    spark.sql(f"""SELECT product_id, category_id, brand, category_code, count(*) AS n FROM kept
                  GROUP BY ALL""").createOrReplaceTempView("combos")
    for col in FILL:
        spark.sql(f"""
            SELECT product_id, {col} AS p_value FROM (
                SELECT product_id, {col}, row_number() OVER (PARTITION BY product_id ORDER BY n DESC, {col}) AS k
                FROM (SELECT product_id, {col}, sum(n) AS n FROM combos WHERE {col} IS NOT NULL GROUP BY ALL))
            WHERE k = 1""").createOrReplaceTempView(f"p_{col}")
        spark.sql(f"""SELECT category_id, CASE WHEN count(DISTINCT {col}) = 1 THEN min({col}) END AS c_value
                      FROM combos GROUP BY category_id""").createOrReplaceTempView(f"c_{col}")
    filled, flags = [], []
    for col, unknown in FILL.items():
        filled.append(f"coalesce(k.{col}, p_{col}.p_value, c_{col}.c_value, '{unknown}') AS {col}")
        flags.append(f"CASE WHEN k.{col} IS NOT NULL THEN 0 WHEN p_{col}.p_value IS NOT NULL THEN 1 "
                     f"WHEN c_{col}.c_value IS NOT NULL THEN 2 ELSE 3 END AS _fill_{col}")
    joins = " ".join(f"LEFT JOIN p_{c} ON p_{c}.product_id = k.product_id "
                     f"LEFT JOIN c_{c} ON c_{c}.category_id = k.category_id" for c in FILL)
    plain = [c for c in S.EVENT_COLUMNS if c not in FILL]
    select = ", ".join(f"k.{c}" for c in plain)
    final = spark.sql(f"""
        SELECT {select}, {', '.join(filled)}, {', '.join(flags)}
        FROM kept k LEFT ANTI JOIN removed r ON k._order = r._order {joins}
        ORDER BY k.event_time, k._order""")
    parts = scratch / "events-parts"
    progress(0.5, "Spark: cleaning and sorting")
    final.write.mode("overwrite").parquet(_uri(parts))
    progress(0.8, "counting and merging the part files")
    counts = _fill_counts(spark, parts)
    counts |= {"invalid": classes.get(1, 0), "no_session": classes.get(2, 0),
               "duplicates": int(spark.sql("SELECT count(*) FROM removed").collect()[0][0])}
    for name in ("removed", "combos", *(f"{k}_{c}" for c in FILL for k in "pc")):
        spark.catalog.dropTempView(name)
    rows = merge_parts(parts, out, S.ARROW_SCHEMA, row_group=ROW_GROUP, compression=WRITE_OPTIONS["compression"],
                       use_dictionary=WRITE_OPTIONS["use_dictionary"])
    assert rows == counts["kept"], "ingest accounting mismatch"
    shutil.rmtree(parts, ignore_errors=True)
    return counts


def _fill_counts(spark, parts: Path) -> dict[str, int]:
    """Rows kept, zero prices and where each filled value came from: a scan of three narrow columns."""
    how = {1: "from_product", 2: "from_category", 3: "unknown"}
    sums = [f"count(*) FILTER (WHERE _fill_{c} = {k}) AS {c}_{v}" for c in FILL for k, v in how.items()]
    row = spark.read.parquet(_uri(parts)).selectExpr("count(*) AS kept",
                                                     "count(*) FILTER (WHERE price = 0) AS price_zero_kept",
                                                     *sums).collect()[0]
    return {k: int(v) for k, v in row.asDict().items()}
