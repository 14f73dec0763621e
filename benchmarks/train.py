"""Training time of the two-tower ``model`` stage (what ``python -m recsys build`` runs), plus its quality.

Each run rebuilds the model stage with ``force=True`` on a built events stage: loading interactions, training
(default config: one torch thread, bounded examples, early stopping), item embeddings, histories. Reports the
median wall time of --runs, the CPU time, and the validation recall@10 next to the popularity baseline measured
on the same validation users (the last 10% of the window's time span).

    python benchmarks/train.py --artifacts /tmp/demo-artifacts --runs 3
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
from recsys.index.stage import build_index_stage  # noqa: E402
from recsys.model.stage import build_model_stage


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, help="a built artifacts directory (events stage)")
    p.add_argument("--demo-events", type=int, default=400_000, help="without --artifacts: build a demo store")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    root = a.artifacts
    if root is None:
        from recsys.build import build
        root = Path(f"/tmp/bench-train-demo-{a.demo_events}")
        build(root, demo_events=a.demo_events, only=[])
    events = read_manifest(root, "events")
    if events is None:
        sys.exit(f"no events stage in {root}")
    runs = []
    for _ in range(a.runs):
        t0, c0 = time.perf_counter(), os.times()
        m, _ = build_model_stage(root, force=True)
        c1 = os.times()
        t1 = time.perf_counter()
        ix, _ = build_index_stage(root, force=True)
        tr = m["train"]
        runs.append({"model_stage_s": round(t1 - t0, 2), "cpu_s": round(c1.user + c1.system - c0.user - c0.system, 2),
                     "train_s": tr["train_seconds"], "index_s": round(time.perf_counter() - t1, 2),
                     "epochs": tr["epochs"], "steps": tr["steps"], "val_recall@10": tr["val_recall@10"],
                     "popularity_val_recall@10": tr["popularity_val_recall@10"]})
        print(json.dumps(runs[-1]), file=sys.stderr)
    out = {"artifacts": str(root), "events_rows": events.get("rows"), "runs": runs,
           "model_stage_s_median": statistics.median(r["model_stage_s"] for r in runs),
           "train_s_median": statistics.median(r["train_s"] for r in runs),
           "load_avg_1min": os.getloadavg()[0]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
