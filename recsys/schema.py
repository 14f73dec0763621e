"""The column contract: names and dtypes of the canonical event table, and its validation.

Every stage border calls :func:`validate_events` (frames) or :func:`validate_parquet_schema` (files).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

EVENT_TIME = "event_time"
EVENT_TYPE = "event_type"
PRODUCT_ID = "product_id"
CATEGORY_ID = "category_id"
CATEGORY_CODE = "category_code"
BRAND = "brand"
PRICE = "price"
USER_ID = "user_id"
USER_SESSION = "user_session"

EVENT_COLUMNS: tuple[str, ...] = (
    EVENT_TIME, EVENT_TYPE, PRODUCT_ID, CATEGORY_ID, CATEGORY_CODE, BRAND, PRICE, USER_ID, USER_SESSION,
)

# The canonical event table as Arrow types (what the events Parquet holds).
ARROW_SCHEMA = pa.schema([
    (EVENT_TIME, pa.timestamp("us", tz="UTC")),
    (EVENT_TYPE, pa.string()),
    (PRODUCT_ID, pa.int64()),
    (CATEGORY_ID, pa.int64()),  # real ids reach 2.1e18: int64, never float
    (CATEGORY_CODE, pa.string()),
    (BRAND, pa.string()),
    (PRICE, pa.float64()),
    (USER_ID, pa.int64()),
    (USER_SESSION, pa.string()),
])

# The same contract as DuckDB SQL types (what ingest casts to).
DUCKDB_TYPES: dict[str, str] = {
    EVENT_TIME: "TIMESTAMPTZ",
    EVENT_TYPE: "VARCHAR",
    PRODUCT_ID: "BIGINT",
    CATEGORY_ID: "BIGINT",
    CATEGORY_CODE: "VARCHAR",
    BRAND: "VARCHAR",
    PRICE: "DOUBLE",
    USER_ID: "BIGINT",
    USER_SESSION: "VARCHAR",
}

# Sums of money in SQL: exact decimals (a parallel float sum depends on the order the threads added in, so the
# same events would not give the same bytes), returned as DOUBLE.
MONEY = "DECIMAL(38, 4)"


def money_sum_sql(expr: str, where: str | None = None) -> str:
    """``sum(expr)`` over prices as an exact decimal sum cast to DOUBLE; ``where`` adds a FILTER clause."""
    flt = f" FILTER (WHERE {where})" if where else ""
    return f"coalesce(sum(({expr})::{MONEY}){flt}, 0)::DOUBLE"


VIEW, CART, PURCHASE, REMOVE = "view", "cart", "purchase", "remove_from_cart"
EVENT_TYPES: tuple[str, ...] = (VIEW, CART, PURCHASE, REMOVE)
# Interaction strength of each event type, used by models and baselines (purchase > cart > view).
EVENT_WEIGHTS: dict[str, float] = {VIEW: 1.0, CART: 3.0, PURCHASE: 5.0, REMOVE: 0.0}

UNKNOWN_BRAND = "unknown_brand"
UNKNOWN_CATEGORY = "unknown_category"

# Integer event codes of the interaction arrays: the position in EVENT_TYPES (the one rule; SQL and numpy alike).
EVENT_CODE: dict[str, int] = {t: i for i, t in enumerate(EVENT_TYPES)}
VIEW_CODE, CART_CODE, PURCHASE_CODE, REMOVE_CODE = (EVENT_CODE[t] for t in EVENT_TYPES)


def event_code_sql(column: str = EVENT_TYPE) -> str:
    """SQL for the integer event code of ``column`` (the same numbers as :data:`EVENT_CODE`)."""
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    return f"list_position([{types}], {column}) - 1"


def category_key_sql(code: str = CATEGORY_CODE, category_id: str = CATEGORY_ID) -> str:
    """SQL for a product's category key: its category_code when known, else ``id:<category_id>`` (a third of real
    REES46 rows have no code; lumping them into one "unknown" category would hide variety). The numpy form is
    ``category_keys``."""
    return f"CASE WHEN {code} = '{UNKNOWN_CATEGORY}' THEN 'id:' || {category_id}::STRING ELSE {code} END"  # STRING: both engines


def catalog_sql(events: str = "events") -> str:
    """SQL for the one catalog rule: a row per product of the ``events`` relation with ``product_id``,
    ``category_id``, ``category_code`` and ``brand`` (its most frequent combination of the three, ties to the
    lowest, so a product never mixes one event's category with another's brand) and ``price`` (the lower median
    of its positive prices, from per-price counts so memory stays bounded at October size; 0 when it has none).
    The product pages, the models, the rules' labels and the new-visitor picker all describe a product by it."""
    first = ", ".join(f"first({c} ORDER BY n DESC, {CATEGORY_ID}, {CATEGORY_CODE}, {BRAND}) AS {c}"
                      for c in (CATEGORY_ID, CATEGORY_CODE, BRAND))
    return f"""
        WITH combo AS (SELECT {PRODUCT_ID}, {CATEGORY_ID}, {CATEGORY_CODE}, {BRAND}, count(*) AS n
                       FROM {events} GROUP BY ALL),
        feat AS (SELECT {PRODUCT_ID}, {first} FROM combo GROUP BY {PRODUCT_ID}),
        pp AS (SELECT {PRODUCT_ID}, {PRICE}, count(*) AS n FROM {events} WHERE {PRICE} > 0 GROUP BY 1, 2),
        cum AS (SELECT {PRODUCT_ID}, {PRICE}, n,
                       sum(n) OVER (PARTITION BY {PRODUCT_ID} ORDER BY {PRICE} ROWS UNBOUNDED PRECEDING) AS c,
                       sum(n) OVER (PARTITION BY {PRODUCT_ID}) AS t FROM pp),
        med AS (SELECT {PRODUCT_ID}, min({PRICE}) FILTER (WHERE c >= t / 2.0) AS {PRICE} FROM cum GROUP BY 1)
        SELECT feat.*, coalesce(med.{PRICE}, 0.0) AS {PRICE} FROM feat LEFT JOIN med USING ({PRODUCT_ID})"""


def category_keys(catalog: pd.DataFrame) -> np.ndarray:
    """Integer diversity key per catalog row: its category_code, or its raw category_id where the code is unknown
    (a third of real REES46 rows have no code, and lumping them into one "unknown" category would hide variety)."""
    code = catalog[CATEGORY_CODE].astype("string").fillna(UNKNOWN_CATEGORY).to_numpy(object)
    by_id = ("id:" + catalog[CATEGORY_ID].astype(str)).to_numpy(object)
    key = np.where(code == UNKNOWN_CATEGORY, by_id, code)
    return pd.factorize(pd.Series(key, dtype=object))[0].astype(np.int64)


class SchemaError(ValueError):
    """A table does not meet the column contract; the message says what to fix."""


def find_sorted(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The id-map lookup: (position, found) of each query value in the sorted unique array ``keys``; a position
    is only meaningful where found (it is clipped into range, and 0 when ``keys`` is empty)."""
    query = np.asarray(query)
    if len(keys) == 0:
        return np.zeros(len(query), np.int64), np.zeros(len(query), bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1).astype(np.int64)
    return pos, keys[pos] == query


def missing_columns(columns: Iterable[str]) -> list[str]:
    """Contract columns absent from ``columns``, in contract order."""
    have = set(columns)
    return [c for c in EVENT_COLUMNS if c not in have]


def validate_events(df: pd.DataFrame, *, where: str = "events") -> pd.DataFrame:
    """Check a frame against the contract (columns, dtypes, values); return it unchanged or raise SchemaError."""
    missing = missing_columns(df.columns)
    if missing:
        raise SchemaError(f"{where}: missing required column(s) {', '.join(missing)}")
    problems = []
    if not isinstance(df[EVENT_TIME].dtype, pd.DatetimeTZDtype) or str(df[EVENT_TIME].dt.tz) != "UTC":
        problems.append(f"{EVENT_TIME} must be a UTC timestamp (got {df[EVENT_TIME].dtype})")
    for col in (PRODUCT_ID, CATEGORY_ID, USER_ID):
        if not pd.api.types.is_integer_dtype(df[col].dtype):
            problems.append(f"{col} must be int64 (got {df[col].dtype})")
    if not pd.api.types.is_float_dtype(df[PRICE].dtype):
        problems.append(f"{PRICE} must be float64 (got {df[PRICE].dtype})")
    bad_types = set(df[EVENT_TYPE].dropna().unique()) - set(EVENT_TYPES)
    if bad_types:
        problems.append(f"{EVENT_TYPE} has unknown values {sorted(bad_types)[:5]} (allowed: {', '.join(EVENT_TYPES)})")
    if df[EVENT_TYPE].isna().any() or df[USER_SESSION].isna().any():
        problems.append(f"{EVENT_TYPE} and {USER_SESSION} may not be empty")
    if problems:
        raise SchemaError(f"{where}: " + "; ".join(problems))
    return df


def validate_parquet_schema(schema: pa.Schema, *, where: str = "events parquet") -> None:
    """Check a Parquet/Arrow schema against the contract; raise SchemaError naming the first mismatches."""
    missing = missing_columns(schema.names)
    if missing:
        raise SchemaError(f"{where}: missing required column(s) {', '.join(missing)}")
    wrong = []
    for field in ARROW_SCHEMA:
        got = schema.field(field.name).type
        ok = got == field.type
        if field.name == EVENT_TIME:
            ok = pa.types.is_timestamp(got) and got.tz in ("UTC", "+00:00", "Etc/UTC")
        elif pa.types.is_string(field.type):
            ok = pa.types.is_string(got) or pa.types.is_large_string(got) or pa.types.is_dictionary(got)
        if not ok:
            wrong.append(f"{field.name} is {got}, expected {field.type}")
    if wrong:
        raise SchemaError(f"{where}: " + "; ".join(wrong))
