"""Ingest benchmark: wall time and peak memory of `recsys` ingest against two references, same files, same run.

References: a raw DuckDB CSV->Parquet COPY of the same file (the floor: parse + write, no cleaning) and pandas
`read_csv` + the same cleaning rules (at the sizes where pandas fits). Each measurement runs in a fresh child
process, so peak RSS (ru_maxrss) is that run's own.

    python benchmarks/make_big_csv.py ...        # writes benchmarks/data/oct-1M.csv etc.
    python benchmarks/ingest.py benchmarks/data/oct-1M.csv benchmarks/data/oct-10M.csv --repeat 3 \
        --pandas-max-rows 10000000
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _child import REPO, run_child

CHILD = r'''
import json, sys, time, tempfile, shutil
from pathlib import Path
sys.path.insert(0, {repo!r})
kind, src, out = {kind!r}, Path({src!r}), Path({out!r})
t0 = time.perf_counter()
if kind == "recsys":
    from recsys.ingest.reader import ingest_files
    rep = ingest_files([src], out)
    rows = rep["rows_kept"]
elif kind == "duckdb_copy":
    import duckdb
    con = duckdb.connect()
    con.execute("SET memory_limit = '3GB'")
    con.execute(f"COPY (SELECT * FROM read_csv('{{src}}', header=true)) TO '{{out / 'raw.parquet'}}' (FORMAT PARQUET)")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{{out / 'raw.parquet'}}')").fetchall()[0][0]
else:
    sys.path.insert(0, {bench!r})
    from ingest import pandas_ingest
    rows = pandas_ingest(src, out / "events.parquet")
print(json.dumps({{"seconds": time.perf_counter() - t0, "rows": int(rows)}}))
'''


def pandas_ingest(src: Path, dst: Path) -> int:
    """The reference: the same cleaning rules with pandas (whole file in memory)."""
    import pandas as pd
    df = pd.read_csv(src, dtype={"event_type": "string", "product_id": "Int64", "category_id": "Int64",
                                 "category_code": "string", "brand": "string", "user_id": "Int64",
                                 "user_session": "string"}, on_bad_lines="skip")
    df["event_time"] = pd.to_datetime(df["event_time"], format="%Y-%m-%d %H:%M:%S UTC", utc=True, errors="coerce")
    df["price"] = pd.to_numeric(df["price"], errors="coerce")
    df = df.dropna(subset=["event_time", "product_id", "category_id", "user_id", "price"])
    df = df[df["event_type"].isin(["view", "cart", "purchase", "remove_from_cart"]) & (df["price"] >= 0)]
    df = df.dropna(subset=["user_session"]).drop_duplicates()
    for col, unknown in (("brand", "unknown_brand"), ("category_code", "unknown_category")):
        known = df.dropna(subset=[col])
        counts = known.groupby(["product_id", col], observed=True).size().rename("n").reset_index()
        by_product = counts.sort_values("n", ascending=False).drop_duplicates("product_id").set_index("product_id")[col]
        per_cat = known.groupby("category_id")[col].nunique()
        one = known.groupby("category_id")[col].first()[per_cat == 1]
        df[col] = df[col].fillna(df["product_id"].map(by_product)).fillna(df["category_id"].map(one)).fillna(unknown)
    df = df.sort_values(["event_time", "user_id", "user_session", "product_id", "event_type"])
    df.to_parquet(dst, index=False)
    return len(df)


def measure(kind: str, src: Path) -> dict:
    """One run in a fresh child process: seconds (as the child timed it) and peak RSS in MB."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as out:
        code = CHILD.format(repo=str(REPO), bench=str(Path(__file__).parent), kind=kind, src=str(src), out=out)
        out, peak_mb = run_child([sys.executable, "-c", code])
    return {**json.loads(out.strip().splitlines()[-1]), "peak_mb": peak_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pandas-max-rows", type=int, default=10_000_000,
                    help="run the pandas reference only on files up to this many rows")
    args = ap.parse_args()
    rows_out = []
    for src in args.files:
        n = sum(1 for _ in open(src, "rb")) - 1
        kinds = ["duckdb_copy", "recsys"] + (["pandas"] if n <= args.pandas_max_rows else [])
        res = {}
        for kind in kinds:
            runs = [measure(kind, src) for _ in range(args.repeat if kind != "pandas" else max(1, args.repeat // 2))]
            res[kind] = {"seconds": statistics.median(r["seconds"] for r in runs),
                         "peak_mb": max(r["peak_mb"] for r in runs), "runs": len(runs)}
            print(f"{src.name} {n:,} rows {kind:12s} median {res[kind]['seconds']:7.1f} s  "
                  f"peak {res[kind]['peak_mb']:7.0f} MB  ({len(runs)} runs)", flush=True)
        line = {"file": src.name, "rows": n, **{k: v for k, v in res.items()}}
        line["recsys_vs_copy"] = res["recsys"]["seconds"] / res["duckdb_copy"]["seconds"]
        if "pandas" in res:
            line["pandas_vs_recsys"] = res["pandas"]["seconds"] / res["recsys"]["seconds"]
        rows_out.append(line)
    print(json.dumps(rows_out, indent=2))


if __name__ == "__main__":
    main()
