"""Evaluation benchmark: wall and CPU time of the whole evaluation stage (every model) on a built store.

Each run is ``build_evaluation_stage(root, force=True)`` in this process; the per-model fit / recommend+metrics
times come from the stage's own manifest. The baseline named in the same run is the cheapest model alone
(most popular), i.e. the fixed cost of the protocol (split, targets, metrics, bootstrap).

    python -m recsys build --artifacts /tmp/demo          # the 400k-event demo store, every stage
    python benchmarks/evaluation.py /tmp/demo --repeat 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def main(argv: list[str] | None = None) -> int:
    from recsys.evaluation.protocol import EvalConfig, evaluate
    from recsys.evaluation.stage import build_evaluation_stage
    from recsys.ingest.interactions import load_interactions
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", help="a built artifacts directory")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    inter = load_interactions(args.root)
    full, cpu, base = [], [], []
    manifest = {}
    for _ in range(args.repeat):
        w, c, (manifest, _) = timed(lambda: build_evaluation_stage(args.root, force=True))
        full.append(w)
        cpu.append(c)
        bw, _, _ = timed(lambda: evaluate(inter, EvalConfig(models=("popular",))))
        base.append(bw)
    report = {
        "events": int(len(inter.ts)), "runs": args.repeat,
        "evaluation_wall_s_median": round(statistics.median(full), 1), "evaluation_wall_s_runs": [round(x, 1) for x in full],
        "evaluation_cpu_s_median": round(statistics.median(cpu), 1),
        "baseline_popular_only_wall_s_median": round(statistics.median(base), 1),
        "per_model_last_run": manifest.get("timings"), "notes": manifest.get("notes"),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
