"""Aggregates-stage benchmark: wall time per step and peak memory of the stage, against a baseline revision measured
in the same run.

Each run rebuilds ``<artifacts>/aggregates`` (``force=True``) in a fresh child process, so its peak RSS (GiB) is its own;
runs alternate baseline and current tree, the current tree last (its cubes are the ones left behind).

    python benchmarks/make_big_csv.py 42.4M --out-dir /work/bench/data
    python -c "from recsys.build import build; build('/work/bench/oct', ['/work/bench/data/oct-42.4M.csv'], only=['events'])"
    python benchmarks/aggregates.py --artifacts /work/bench/oct --baseline-rev eabba40 --runs 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from _child import REPO, baseline_worktree, run_child

CHILD = r'''
import json, sys, time
sys.path.insert(0, {tree!r})
from recsys.aggregates.stage import AggregateParams, build_aggregates_stage
steps, t0 = {{}}, time.perf_counter()
last = [t0, None]
def progress(frac, msg=""):
    now = time.perf_counter()
    if msg != last[1]:
        if last[1] is not None:
            steps[last[1]] = steps.get(last[1], 0.0) + now - last[0]
        last[0], last[1] = now, msg
limit = {limit!r}
params = AggregateParams() if limit is None else AggregateParams(memory_limit=limit)
build_aggregates_stage({root!r}, force=True, progress=progress, params=params)
now = time.perf_counter()
steps[last[1]] = steps.get(last[1], 0.0) + now - last[0]
print(json.dumps({{"seconds": now - t0, "steps": {{k: round(v, 1) for k, v in steps.items()}}}}))
'''


def _measure(tree: Path, root: Path, limit: str | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1"}
    out, peak_mib = run_child([sys.executable, "-c", CHILD.format(tree=str(tree), root=str(root), limit=limit)],
                              env=env, cwd=tree)
    return {**json.loads(out.strip().splitlines()[-1]), "peak_gib": round(peak_mib / 1024, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, required=True, help="an artifacts directory with the events stage built")
    p.add_argument("--baseline-rev", default=None, help="git revision to compare with (measured in a worktree)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--memory-limit", default=None, help="DuckDB memory_limit for the current tree (default: the "
                                                          "stage's own); the baseline always runs with its own")
    a = p.parse_args()
    load = os.getloadavg()[0]
    with baseline_worktree(a.baseline_rev) as base:
        trees = ({"baseline": base} if base else {}) | {"current": REPO}
        runs: dict[str, list[dict]] = {k: [] for k in trees}
        for _ in range(a.runs):
            for name, tree in trees.items():
                runs[name].append(_measure(tree, a.artifacts, a.memory_limit if name == "current" else None))
                print(name, json.dumps(runs[name][-1]), file=sys.stderr, flush=True)
    out = {"artifacts": str(a.artifacts), "baseline_rev": a.baseline_rev, "memory_limit": a.memory_limit,
           "load_avg_1min_at_start": load, "runs": runs}
    for name in trees:
        out[f"{name}_seconds_median"] = round(statistics.median(r["seconds"] for r in runs[name]), 1)
        out[f"{name}_peak_gib_max"] = max(r["peak_gib"] for r in runs[name])
    if "baseline" in trees:
        out["ratio_current_to_baseline"] = round(out["current_seconds_median"] / out["baseline_seconds_median"], 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
