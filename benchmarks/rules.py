"""Affinity-mining benchmark: default settings, Apriori vs FP-growth, on the baskets of a built events stage.

Each run is a fresh DuckDB connection doing the whole job the page and the build do: baskets from the events
Parquet, the auto support, the size guards, the one-hot of frequent items, mlxtend mining, rules and labels.
``mine`` is the mlxtend part alone (one-hot + frequent itemsets + rules), ``total`` everything (wall), ``cpu`` the
process CPU time of the whole job (all threads; a fair figure when the shared machine is busy, with the 1-minute
load average at the start of each run recorded). Medians of --runs.

    python benchmarks/rules.py --artifacts /work/bench/artifacts-oct --runs 3      # October-size (42.4M rows)
    python benchmarks/rules.py --demo-events 400000 --runs 5                         # the demo store
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.artifacts import read_manifest  # noqa: E402
from recsys.rules.mining import mine_rules  # noqa: E402
from recsys.rules.params import RuleParams  # noqa: E402


def bench(root: Path, algorithm: str, runs: int, **overrides) -> dict:
    """Median total and mining seconds of ``runs`` default-settings mining runs, plus the run's facts."""
    totals, cpus, mines, loads, stats = [], [], [], [], {}
    for _ in range(runs):
        loads.append(round(os.getloadavg()[0], 1))
        t0, c0 = time.perf_counter(), time.process_time()
        res = mine_rules(root, RuleParams(algorithm=algorithm, **overrides))
        totals.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)  # all threads of this process (DuckDB's included)
        mines.append(res.stats["mine_seconds"])
        stats = {k: v for k, v in res.stats.items() if k != "params"}
        stats["min_support"] = res.stats["params"]["min_support"]
    return {"algorithm": algorithm, "runs": runs, "total_s_median": round(statistics.median(totals), 2),
            "total_s_all": [round(t, 2) for t in totals], "cpu_s_median": round(statistics.median(cpus), 2),
            "mine_s_median": round(statistics.median(mines), 3), "mine_s_all": [round(m, 2) for m in mines],
            "load_avg_1min_at_start": loads,
            "rules": stats["rules"], "facts": stats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, help="a built artifacts directory (events stage)")
    p.add_argument("--demo-events", type=int, default=400_000, help="without --artifacts: build a demo store")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--algorithms", nargs="+", default=["apriori", "fpgrowth"])
    a = p.parse_args()
    root = a.artifacts
    if root is None:
        from recsys.build import build
        root = Path(f"/tmp/bench-rules-demo-{a.demo_events}")
        build(root, demo_events=a.demo_events, only=[])
    events = read_manifest(root, "events")
    if events is None:
        sys.exit(f"no events stage in {root}")
    rows = events.get("rows", {})
    print(f"events: {rows} in {root}", file=sys.stderr)
    out = {"artifacts": str(root), "events_rows": rows, "results": [bench(root, alg, a.runs) for alg in a.algorithms]}
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
