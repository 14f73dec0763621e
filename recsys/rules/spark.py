"""The rules stage's Spark part: the basket-item pairs of the scope counted on Spark, and frequent itemsets by
Spark ML's FP-growth. Everything else (the support definition, auto support, guards, rule metrics, labels) is
the DuckDB engine's own code (``baskets``, ``mining``), so both engines give the same rules."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from recsys.artifacts import events_path, sql_literal
from recsys.rules.baskets import scope_counts_sql
from recsys.rules.params import RuleParams
from recsys.spark_engine import SparkEngine


def on_spark(root: str | os.PathLike | None, con, params: RuleParams, spec: Any, scratch: Path) -> tuple[Any, dict]:
    """The Spark engine's part of the stage: the basket-item pairs counted on Spark (loaded into ``con`` as
    ``spark_scope``) and FP-growth as the miner. Returns (the engine, mine_rules_con's keyword arguments)."""
    engine = SparkEngine.over_events(spec, events_path(root), scratch)
    path = scratch / "scope_bi.parquet"
    engine.copy(scope_counts_sql(params, engine.dialect), path)
    con.execute(f"CREATE OR REPLACE TEMP TABLE spark_scope AS SELECT * FROM read_parquet({sql_literal(path)})")
    return engine, {"scope": "spark_scope", "miner": lambda codes, items, k, p: fpgrowth_spark(engine.spark, codes,
                                                                                             items, k, p)}


def fpgrowth_spark(spark, codes: pd.DataFrame, items: list[str], min_count: int, params: RuleParams) -> pd.DataFrame:
    """Frequent itemsets of the multi-item baskets (``codes``: row, code) with Spark ML's FP-growth, as the
    frame :func:`frequent_itemsets` returns (support within those baskets, frozenset of item keys).

    FP-growth has no length limit: longer itemsets are dropped afterwards, and the guards (which estimate up to
    ``max_len``) keep the support high enough that they stay few."""
    from pyspark.ml.fpm import FPGrowth
    n_rows = int(codes["row"].nunique())
    empty = pd.DataFrame({"support": pd.Series(dtype=float), "itemsets": pd.Series(dtype=object)})
    if n_rows < min_count:  # too few multi-item baskets for any pair to be frequent
        return empty
    table = pa.table({"row": codes["row"].to_numpy("int64"), "code": codes["code"].to_numpy("int32")})
    baskets = spark.createDataFrame(table).groupBy("row").agg({"code": "collect_list"}) \
        .withColumnRenamed("collect_list(code)", "items")
    model = FPGrowth(itemsCol="items", minSupport=(min_count - 0.5) / n_rows).fit(baskets)
    found = model.freqItemsets.toArrow().to_pydict()
    keep = [(codes_, f) for codes_, f in zip(found["items"], found["freq"]) if len(codes_) <= params.max_len]
    if not keep:
        return empty
    return pd.DataFrame({"support": [f / n_rows for _, f in keep],
                         "itemsets": [frozenset(items[c] for c in cs) for cs, _ in keep]})
