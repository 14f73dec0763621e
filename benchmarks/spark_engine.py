"""Spark engine benchmark: the events, aggregates and rules stages on DuckDB and on Spark local[1] / local[2],
same file, same run, each configuration in a fresh child process (median wall time of ``--repeat`` runs).

    python benchmarks/make_big_csv.py 10M                       # -> benchmarks/data/oct-10M.csv
    python benchmarks/spark_engine.py benchmarks/data/oct-10M.csv --repeat 1

On one small machine Spark is expected to be slower than DuckDB: the point is that the same stages run on many
machines. The 1 -> 2 local core speed-up gives each stage's parallel fraction p (Amdahl: S = 1 / (1 - p + p/2)),
and from it a projection of the stage time on more cores, T(n) = T(1) * (1 - p + p/n), stated as a projection:
a cluster adds network shuffles that a local run does not have.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("events", "aggregates", "rules")

CHILD = r'''
import json, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from recsys.aggregates.query import build_aggregates_stage
from recsys.ingest.reader import build_events
from recsys.rules.stage import build_rules_stage
master, src, root = {master!r}, Path({src!r}), Path({root!r})
out, spec = {{}}, None
if master:
    from recsys.spark_engine import SparkSpec, session
    spec = SparkSpec(master)
    t0 = time.perf_counter()
    session(spec)
    out["session_start"] = time.perf_counter() - t0
engine = {{"engine": spec}} if spec else {{}}
for name, run in (("events", lambda: build_events(root, [src], spark=spec)),
                  ("aggregates", lambda: build_aggregates_stage(root, **engine)),
                  ("rules", lambda: build_rules_stage(root, **engine))):
    t0 = time.perf_counter()
    run()
    out[name] = time.perf_counter() - t0
print(json.dumps(out))
'''


def run_once(master: str | None, src: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as d:
        code = CHILD.format(repo=str(REPO), master=master, src=str(src), root=str(Path(d) / "art"))
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"{master or 'duckdb'} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def projection(t1: float, t2: float, cores: int) -> tuple[float, float]:
    """(parallel fraction p, projected seconds on ``cores``) from the 1- and 2-core times (Amdahl's law)."""
    speedup = t1 / t2 if t2 > 0 else 1.0
    p = min(1.0, max(0.0, 2.0 * (1.0 - 1.0 / speedup)))
    return p, t1 * (1.0 - p + p / cores)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=Path, help="a REES46 CSV (benchmarks/make_big_csv.py writes one)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (median reported)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    configs = {"duckdb": None, "spark local[1]": "local[1]", "spark local[2]": "local[2]"}
    load = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
    for _ in range(args.repeat):  # interleaved, so drift in the machine's load hits every configuration alike
        for name, master in configs.items():
            t0 = time.perf_counter()
            runs[name].append(run_once(master, args.csv))
            print(f"# {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    print(f"file {args.csv.name}, {args.repeat} run(s) each, load average at start {load:.2f}, "
          f"{os.cpu_count()} cores")
    print(f"{'stage':12s} {'duckdb s':>9s} {'spark[1] s':>10s} {'spark[2] s':>10s} {'spark[2]/duckdb':>15s} "
          f"{'1->2 cores':>10s} {'p':>5s} {'proj. 8 cores s':>15s}")
    for stage in STAGES:
        d, s1, s2 = med["duckdb"][stage], med["spark local[1]"][stage], med["spark local[2]"][stage]
        p, t8 = projection(s1, s2, 8)
        print(f"{stage:12s} {d:9.1f} {s1:10.1f} {s2:10.1f} {s2 / d:14.2f}x {s1 / s2:9.2f}x {p:5.2f} {t8:15.1f}")
    print(f"Spark session start (JVM): local[1] {med['spark local[1]']['session_start']:.1f} s, "
          f"local[2] {med['spark local[2]']['session_start']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"file": str(args.csv), "load": load, "runs": runs, "median": med}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
