"""The Spark engine: the events, aggregates and rules stages on Apache Spark (``build --engine spark``).

Spark runs the scans, joins and group-bys; what it writes is then streamed, part file by part file in order, into
the one Parquet file per table that the app and the API read, with the same column types as the DuckDB engine
(so the artifacts are interchangeable and the parity tests compare them directly).

Paths: in ``local[N]`` mode everything is on this machine. On a cluster (``spark://``, ``yarn``) the inputs may be
any URI Spark reads (``hdfs://``, ``s3a://``), but the artifacts directory must be one path that the driver and
every worker see (a shared mount): workers write the part files there and the driver merges them.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.engine import SPARK

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"


class SparkUnavailable(RuntimeError):
    """pyspark or a Java runtime is missing; the message says what to install."""


@dataclass(frozen=True)
class SparkSpec:
    """How to reach Spark: the master URL and extra ``spark.*`` settings (``--spark-conf KEY=VALUE``).

    ``master`` None means: the one ``spark-submit`` was given when it started this process, else local[2]."""
    master: str | None = DEFAULT_MASTER
    conf: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The master as recorded in manifests."""
        return self.master or ("spark-submit" if _under_spark_submit() else DEFAULT_MASTER)

    @classmethod
    def parse(cls, master: str | None, conf: list[str] | None) -> "SparkSpec":
        """From the CLI's ``--master`` and ``--spark-conf`` values; ValueError naming a malformed setting."""
        out: dict[str, str] = {}
        for item in conf or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip().startswith("spark."):
                raise ValueError(f"--spark-conf {item!r}: expected spark.KEY=VALUE")
            out[key.strip()] = value.strip()
        return cls(master, out)


_SESSIONS: dict[tuple, Any] = {}  # by (master, settings); Spark allows one context per process


def _check_runtime() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkUnavailable("the Spark engine needs pyspark: pip install -r requirements-spark.txt") from exc
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and shutil.which("java") is None:
        raise SparkUnavailable("the Spark engine needs a Java 17 runtime on PATH or in JAVA_HOME "
                               "(Debian: apt-get install openjdk-17-jre-headless)")


def session(spec: SparkSpec = SparkSpec()):
    """The SparkSession for ``spec`` (one per process and spec; UTC; the UI and event log off)."""
    hashed = (spec.master, tuple(sorted(spec.conf.items())))
    if hashed in _SESSIONS:
        return _SESSIONS[hashed]
    _check_runtime()
    master = spec.master or (None if _under_spark_submit() else DEFAULT_MASTER)
    local = master is not None and master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "hostname resolves to loopback" warning
    # pyspark warns about pandas 3 on import; recsys moves data through Arrow, not pyspark's pandas paths
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    from pyspark.sql import SparkSession
    log4j = Path(__file__).with_name("spark-log4j2.properties")
    quiet = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (builder.appName("recsys-build")
               .config("spark.sql.session.timeZone", "UTC")  # day and hour buckets are UTC, as in DuckDB
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # not INT96
               .config("spark.sql.ansi.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.adaptive.enabled", "true")  # coalesces small shuffles
               # parse every CSV column of every line: with pruning, whether a line counts as malformed (too few
               # fields) depends on which columns a query reads, and the ingest's counts would disagree
               .config("spark.sql.csv.parser.columnPruning.enabled", "false")
               .config("spark.driver.extraJavaOptions", quiet))
    if local:
        cores = master[len("local["):-1] if master.startswith("local[") else "1"
        n = (os.cpu_count() or 2) if cores == "*" else int(cores.split(",")[0] or 1)
        builder = (builder.config("spark.sql.shuffle.partitions", str(max(2, 4 * n)))
                   .config("spark.driver.memory", os.environ.get("RECSYS_SPARK_DRIVER_MEMORY", "4g")))
    for k, v in spec.conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    _SESSIONS[hashed] = spark
    return spark


def _under_spark_submit() -> bool:
    """True when spark-submit started this Python process (its JVM is waiting on this gateway)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def stop_sessions() -> None:
    """Stop every session this process started (tests; a CLI run ends with the process)."""
    for spark in _SESSIONS.values():
        spark.stop()
    _SESSIONS.clear()


def nullable(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every field nullable (which fields a writer marks required depends on the writer and, for
    DuckDB, on the data: nothing reads it, and the parity tests compare types and values only)."""
    return pa.schema([f.with_nullable(True) for f in schema], metadata=None)


def merge_parts(parts: Path, out: Path, schema: pa.Schema | None = None, *, row_group: int | None = None,
                **write_options: Any) -> int:
    """Stream the part files of a Spark Parquet write, in part order, into one Parquet file ``out``.

    Spark writes a globally ordered result as part-00000, part-00001, ... in key order, so concatenating the
    parts keeps the ORDER BY. ``schema`` (default: the parts' own, made nullable) is what ``out`` holds; batches
    are cast to it. Memory stays at one row group. Returns the row count; removes ``parts``.
    """
    files = sorted(p for p in parts.glob("part-*") if p.suffix == ".parquet" or ".parquet" in p.name)
    if schema is None:
        schema = nullable(pq.read_schema(files[0])) if files else None
    if schema is None:
        raise ValueError(f"{parts}: Spark wrote no part file and no schema was given")
    options = {"compression": "zstd", **write_options}
    size = row_group or 1_000_000
    rows, held, pending = 0, 0, []
    with pq.ParquetWriter(out, schema, **options) as writer:
        def flush() -> None:
            nonlocal rows, held, pending
            if pending:
                t = pa.concat_tables(pending)
                writer.write_table(t, row_group_size=size)
                rows += t.num_rows
            held, pending = 0, []

        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=size):
                if batch.num_rows:
                    pending.append(pa.Table.from_batches([batch]).select(schema.names).cast(schema))
                    held += batch.num_rows
                if held >= size:
                    flush()
        flush()
    shutil.rmtree(parts, ignore_errors=True)
    return rows


class SparkEngine:
    """Runs stage SQL on Spark over a view ``events`` of the built events Parquet."""
    dialect = SPARK

    def __init__(self, spark, scratch: Path) -> None:
        self.spark = spark
        self.scratch = Path(scratch)  # where part files go before they are merged (a path every worker sees)
        self._cached: dict[str, Any] = {}

    @classmethod
    def over_events(cls, spec: SparkSpec, events: Path, scratch: Path) -> "SparkEngine":
        engine = cls(session(spec), scratch)
        engine.spark.read.parquet(_uri(events)).createOrReplaceTempView("events")
        return engine

    def execute(self, sql: str) -> None:
        self.spark.sql(sql)

    def table(self, name: str, sql: str) -> None:
        self.drop(name)
        from pyspark import StorageLevel
        df = self.spark.sql(sql).persist(StorageLevel.MEMORY_AND_DISK)
        df.count()  # materialise now, as DuckDB's CREATE TABLE does
        df.createOrReplaceTempView(name)
        self._cached[name] = df

    def drop(self, name: str) -> None:
        df = self._cached.pop(name, None)
        if df is not None:
            df.unpersist()
        self.spark.catalog.dropTempView(name)

    def copy(self, sql: str, out: Path, schema: pa.Schema | None = None, **write_options: Any) -> int:
        parts = self.scratch / f".spark-{Path(out).stem}-{uuid.uuid4().hex[:8]}"
        self.spark.sql(sql).write.mode("overwrite").parquet(_uri(parts))
        return merge_parts(parts, Path(out), schema, **write_options)

    def fetch(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toArrow().to_pandas()

    def scan(self, path: Path) -> str:
        return "parquet.`" + _uri(path).replace("`", "``") + "`"

    def close(self) -> None:
        for name in list(self._cached):
            self.drop(name)


def is_uri(path: Path | str) -> bool:
    """True for ``scheme://...`` inputs (hdfs, s3a, file), which only Spark reads."""
    return isinstance(path, str) and "://" in path


def uri_fingerprint(spec: SparkSpec, uris: list[str]) -> list:
    """Name, size and modification time of every file each URI (or glob) names, asked of its Hadoop
    filesystem; FileNotFoundError when one names nothing."""
    spark = session(spec)
    jvm, conf = spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration()
    out = []
    for uri in uris:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        try:
            found = path.getFileSystem(conf).globStatus(path)
        except Exception as exc:  # py4j wraps the filesystem's IOException
            raise FileNotFoundError(f"{uri}: cannot be read by Spark ({str(exc).splitlines()[0][:200]})") from exc
        if not found:
            raise FileNotFoundError(f"{uri}: no such file")
        out += [[st.getPath().getName(), int(st.getLen()), int(st.getModificationTime())] for st in found]
    return out


def _uri(path: Path | str) -> str:
    """A local path as a URI Spark resolves against the local filesystem (a URI is returned as given)."""
    s = str(path)
    return s if "://" in s else Path(s).resolve().as_uri()
