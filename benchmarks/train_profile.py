"""Where a two-tower training step's CPU time goes, on a built store (default config, one torch thread).

Runs the real ``train_two_tower`` for one epoch of 100 steps (validation off) with its step wrapped, as
``train_throughput.py`` does: steps 1-10 warm up, 11-70 are timed (examples per second of CPU time), 71-100 run
under the torch profiler, whose table is printed by self CPU time.

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/train_profile.py --artifacts /tmp/b_demo
"""
from __future__ import annotations

import argparse
import time

from torch.profiler import profile

import recsys.model.train as T
from recsys.ingest.interactions import load_interactions
from recsys.model.towers import TwoTowerConfig

WARM, TIMED, PROFILED = 10, 60, 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--rows", type=int, default=30, help="rows of the profiler table")
    args = ap.parse_args()
    inter = load_interactions(args.artifacts)
    cfg = TwoTowerConfig()
    examples = (WARM + TIMED + PROFILED) * cfg.batch_size
    cfg = TwoTowerConfig(max_epochs=1, epoch_examples=examples, min_total_examples=examples,
                         max_total_examples=examples, min_steps_per_epoch=1, val_fraction=0.0, refit_epochs=0)
    acc = {"steps": 0, "n": 0, "cpu": 0.0}
    prof = profile()
    step = T._step

    def wrapped(model, opt, data, pos, *a):
        s = acc["steps"] = acc["steps"] + 1
        if s == WARM + TIMED + 1:
            prof.start()
        c = time.process_time()
        out = step(model, opt, data, pos, *a)
        if WARM < s <= WARM + TIMED:
            acc["cpu"] += time.process_time() - c
            acc["n"] += len(pos)
        return out

    T._step = wrapped
    T.train_two_tower(inter, cfg)
    if acc["steps"] <= WARM + TIMED:
        raise SystemExit(f"this store gave {acc['steps']} steps of {cfg.batch_size}; the profile needs "
                         f"{WARM + TIMED + 1} or more")
    prof.stop()
    print(f"{inter.n_items:,} items: {acc['n'] / acc['cpu']:,.0f} examples/s of CPU, "
          f"{acc['cpu'] / TIMED * 1000:.1f} ms per step of {cfg.batch_size} (steps {WARM + 1}-{WARM + TIMED}); "
          f"profiled steps {WARM + TIMED + 1}-{acc['steps']}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
