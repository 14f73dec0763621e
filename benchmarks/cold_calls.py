"""Served calls on a cold page cache: the first calls after a service loads, against the same users' later calls.

The served state is memory-mapped (at Oct+Nov 10 GB), so a fresh process's first calls read their pages from disk
unless the service's prefetch (``recsys.artifacts.prefetch``) has cached them. With ``--drop-caches`` (root: it
writes ``/proc/sys/vm/drop_caches``) the page cache is emptied first; then the service loads, makes ``--warmup``
calls, and times ``--passes`` passes over the same seeded random users, each call on its own (wall and thread
CPU). Pass 1 is the cold figure, the later passes the warm baseline of the same run. ``--repo`` imports the
library from another checkout (e.g. a ``git worktree`` of an older commit) to compare code on the same machine.

    sudo PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/cold_calls.py /work/bench/octnov --drop-caches
    sudo PYTHONPATH=. python benchmarks/cold_calls.py /work/bench/octnov --drop-caches --repo /work/wt-old
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", type=Path)
    p.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    p.add_argument("--drop-caches", action="store_true", help="empty the page cache first (needs root)")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.drop_caches:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    sys.path.insert(0, str(a.repo))
    from recsys.serving.service import load_recommender_service
    t0 = time.perf_counter()
    svc = load_recommender_service(a.artifacts)
    out = {"repo": str(a.repo), "load_s": round(time.perf_counter() - t0, 2), "dropped_caches": a.drop_caches,
           "prefetched_files": len(getattr(svc, "prefetched", [])), "load_average": os.getloadavg(), "passes": []}
    users = np.random.default_rng(a.seed).choice(np.asarray(svc.user_ids), a.users + a.warmup, replace=False)
    for u in users[:a.warmup]:
        svc.recommend_for_user(int(u), 10, 0.3)
    for _ in range(a.passes):
        wall, cpu = [], []
        for u in users[a.warmup:]:
            t, c = time.perf_counter(), time.thread_time()
            svc.recommend_for_user(int(u), 10, 0.3)
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - t)
        w, c = np.array(wall) * 1000, np.array(cpu) * 1000
        out["passes"].append({"p50_ms": round(float(np.median(w)), 1), "p99_ms": round(float(np.percentile(w, 99)), 1),
                              "max_ms": round(float(w.max()), 1), "cpu_p99_ms": round(float(np.percentile(c, 99)), 1)})
        print(out["passes"][-1], file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
