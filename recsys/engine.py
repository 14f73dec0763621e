"""Where the data-parallel build stages run: DuckDB on this machine (the default) or Apache Spark.

The SQL of the aggregates and rules stages is written once, in the subset both engines read alike; the few
functions they spell differently come from a :class:`Dialect`. An :class:`Engine` runs that SQL: it materialises
temp tables, writes a query's result as one Parquet file (the layout the app reads), and fetches small results.
``recsys.spark_engine`` holds the Spark engine; this module never imports pyspark.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd

from recsys.artifacts import sql_literal

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Dialect:
    """The spellings that differ between DuckDB and Spark SQL (everything else is written once)."""
    name: str

    @property
    def spark(self) -> bool:
        return self.name == "spark"

    def hash64(self, expr: str) -> str:
        """A 64-bit hash (grouping keys only: values differ between engines, groups do not)."""
        return f"xxhash64({expr})" if self.spark else f"hash({expr})"

    def epoch_us(self, expr: str) -> str:
        """Microseconds since 1970 of a timestamp."""
        return f"unix_micros({expr})" if self.spark else f"epoch_us({expr})"

    def days_between(self, first: str, later: str) -> str:
        """Whole days from date ``first`` to date ``later``."""
        return f"datediff({later}, {first})" if self.spark else f"({later} - {first})"

    def idiv(self, num: str, den: int) -> str:
        """Integer division rounding towards minus infinity (operands non-negative here)."""
        return f"({num}) div {int(den)}" if self.spark else f"({num}) // {int(den)}"

    @property
    def naive_timestamp(self) -> str:
        """The type of a timestamp without a time zone (the hourly cube's hour)."""
        return "TIMESTAMP_NTZ" if self.spark else "TIMESTAMP"

    def day_number(self, ts: str) -> str:
        """Days since 1970-01-01 of a timestamp's UTC date."""
        if self.spark:
            return f"unix_date(CAST({ts} AS DATE))"
        return f"(CAST({ts} AS DATE) - DATE '1970-01-01')"


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


class Engine(Protocol):
    """Runs stage SQL over a table (or view) named ``events``."""
    dialect: Dialect

    def execute(self, sql: str) -> None:
        """Run a statement for its effect (``DROP``...)."""

    def table(self, name: str, sql: str) -> None:
        """Materialise ``sql`` as the temp table ``name`` (replacing one of that name)."""

    def drop(self, name: str) -> None:
        """Forget the temp table ``name``."""

    def copy(self, sql: str, out: Path) -> int:
        """Write the result of ``sql`` (in its ORDER BY order) to the one Parquet file ``out``; its row count."""

    def fetch(self, sql: str) -> pd.DataFrame:
        """A small result as a DataFrame."""

    def scan(self, path: Path) -> str:
        """A FROM item reading the Parquet file ``path``."""

    def close(self) -> None:
        """Release what the engine holds for the stage (temp tables, caches); safe to call on any path."""


class DuckDBEngine:
    """The default engine: one DuckDB connection (the caller opens and closes it)."""
    dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def table(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def drop(self, name: str) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def copy(self, sql: str, out: Path) -> int:
        self.con.execute(f"COPY ({sql}) TO {sql_literal(out)} (FORMAT PARQUET, COMPRESSION ZSTD)")
        return int(self.con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(out)})").fetchall()[0][0])

    def fetch(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def scan(self, path: Path) -> str:
        return f"read_parquet({sql_literal(path)})"

    def close(self) -> None:
        """Nothing: the connection belongs to the caller, who closes it."""


def as_engine(con_or_engine: duckdb.DuckDBPyConnection | Engine) -> Engine:
    """An engine for a DuckDB connection (an engine is returned as it is)."""
    if isinstance(con_or_engine, duckdb.DuckDBPyConnection):
        return DuckDBEngine(con_or_engine)
    return con_or_engine
