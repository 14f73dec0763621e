"""The served ranker's fit as the evaluation fits it, with its per-user serving state over every user or over the
scored users only (``RankerRecommender(serve_users=...)``): seconds, peak RSS of the whole fit and of its last
phase (the serving state), each fit in a fresh child process, the two modes alternated.

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/eval_ranker_memory.py /work/bench/b5m --runs 1

The users are the evaluation's (``recsys.evaluation.protocol``: the same split, targets and samples). Both modes
give the same lists for those users (``tests/test_ranker.py``); the child checks that its lists are the same in
both (a hash of them is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._child import REPO, run_child  # noqa: E402

CHILD = r"""
import hashlib, json, sys, threading, time
import numpy as np
from recsys.evaluation import protocol as P
from recsys.ingest.interactions import load_interactions
from recsys.model.ranker import RankerRecommender
root, mode = sys.argv[1], sys.argv[2]

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmRSS:"))

peak = {"all": 0.0, "phase": 0.0, "name": ""}
def sample():
    while True:
        r = rss_mb()
        peak["all"], peak["phase"] = max(peak["all"], r), max(peak["phase"], r)
        time.sleep(0.05)
def progress(f, msg):
    if msg.startswith("ranker features over the whole window") and peak["name"] != "serving state":
        peak["name"], peak["phase"] = "serving state", rss_mb()
inter = load_interactions(root)
split = P.temporal_split(inter, P.EvalConfig().test_fraction)
cfg = P.EvalConfig()
settings = P._settings(split, P._target_variants(inter, []), cfg, [])
users = np.unique(np.concatenate([u for u, _ in settings.values()]))
del inter
threading.Thread(target=sample, daemon=True).start()
base = rss_mb()
t0 = time.perf_counter()
kw = P._model_kwargs("two_tower_ranker", cfg, progress, users)
if mode == "everyone":
    kw.pop("serve_users")
model = RankerRecommender(**kw).fit(split.train)
fit_s = time.perf_counter() - t0
rec = model.recommend(users, 20)
print(json.dumps({"mode": mode, "users": int(len(users)), "n_users": int(split.train.n_users),
                  "fit_s": round(fit_s, 1), "peak_mib": round(peak["all"]), "serving_state_peak_mib": round(peak["phase"]),
                  "before_fit_mib": round(base), "lists": hashlib.sha256(rec.items.tobytes()).hexdigest()[:16]}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", type=Path)
    p.add_argument("--runs", type=int, default=1, help="fits per mode, alternated")
    args = p.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    print(json.dumps({"artifacts": str(args.artifacts), "load_avg_at_start": os.getloadavg()[0]}), flush=True)
    rows = []
    for _ in range(args.runs):
        for mode in ("everyone", "scored users"):
            out, child_peak = run_child([sys.executable, "-c", CHILD, str(args.artifacts), mode], env=env, cwd=REPO)
            row = {**json.loads(out.strip().splitlines()[-1]), "child_peak_mib": round(child_peak)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    same = len({r["lists"] for r in rows}) == 1
    print(json.dumps({"same_lists_in_both_modes": same}), flush=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
