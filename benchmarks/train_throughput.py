"""Two-tower training throughput in examples/s, against a baseline revision measured in the same run.

Each measurement trains one epoch of ``--examples`` targets (default config otherwise, validation off) in a fresh
process and times the optimiser steps (batch construction, forward, loss, backward, update): examples per second
of CPU time and of wall time. ``--baseline-rev`` checks that git revision out into a temporary worktree and
measures it the same way, alternating runs, so both see the same machine load. ``--items N`` blows the catalog
up to N items (the events keep their items, remapped; the rest are copies of real products) to show how the
step cost grows with the catalog.

    python benchmarks/train_throughput.py --artifacts /tmp/demo-artifacts --baseline-rev 5b71cd4 --runs 3
    python benchmarks/train_throughput.py --artifacts /tmp/demo-artifacts --baseline-rev 5b71cd4 --items 170000
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _child import REPO, baseline_worktree


def _worker(artifacts: str, examples: int, items: int) -> dict:
    """Runs inside the tree under test (its ``recsys`` is first on sys.path)."""
    import numpy as np
    import pandas as pd

    import recsys.model.train as T
    from recsys.ingest.interactions import load_interactions
    from recsys.model.towers import TwoTowerConfig

    inter = load_interactions(artifacts)
    if items > inter.n_items:
        rng = np.random.default_rng(0)
        extra = inter.catalog.iloc[rng.integers(0, inter.n_items, items - inter.n_items)].copy()
        extra["product_id"] = np.arange(items - inter.n_items) + 10 ** 12
        cat = pd.concat([inter.catalog, extra], ignore_index=True)
        perm = rng.permutation(items)
        cat = cat.iloc[np.argsort(perm)].reset_index(drop=True)  # item code c becomes perm[c]
        inter = dataclasses.replace(inter, item=perm[inter.item].astype(np.int32),
                                    item_ids=cat["product_id"].to_numpy(), catalog=cat)
    acc = {"cpu": 0.0, "wall": 0.0, "n": 0}
    step = T._step

    def timed(model, opt, data, pos, *a):
        c, w = time.process_time(), time.perf_counter()
        out = step(model, opt, data, pos, *a)
        acc["cpu"] += time.process_time() - c
        acc["wall"] += time.perf_counter() - w
        acc["n"] += len(pos)
        return out

    T._step = timed
    cfg = TwoTowerConfig(max_epochs=1, epoch_examples=examples, min_total_examples=examples,
                         max_total_examples=examples, val_fraction=0.0, refit_epochs=0)
    _, report = T.train_two_tower(inter, cfg)
    return {"items": inter.n_items, "examples": acc["n"], "loss": report["history"][0]["loss"],
            "cpu_examples_per_s": round(acc["n"] / acc["cpu"]), "wall_examples_per_s": round(acc["n"] / acc["wall"])}


def _measure(tree: Path, a: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "--artifacts", str(a.artifacts),
                          "--examples", str(a.examples), "--items", str(a.items)],
                         cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, required=True, help="a built artifacts directory (events stage)")
    p.add_argument("--baseline-rev", default=None, help="git revision to compare with (measured in a worktree)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--examples", type=int, default=60_000)
    p.add_argument("--items", type=int, default=0, help="blow the catalog up to this many items")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        sys.path.insert(0, os.getcwd())
        print(json.dumps(_worker(str(a.artifacts), a.examples, a.items)))
        return
    with baseline_worktree(a.baseline_rev) as base:
        trees = {"current": REPO} | ({"baseline": base} if base else {})
        runs: dict[str, list[dict]] = {k: [] for k in trees}
        for _ in range(a.runs):
            for name, tree in trees.items():
                runs[name].append(_measure(tree, a))
                print(name, json.dumps(runs[name][-1]), file=sys.stderr)
    out = {"artifacts": str(a.artifacts), "baseline_rev": a.baseline_rev, "runs": runs,
           "load_avg_1min": os.getloadavg()[0]}
    for name in trees:
        for key in ("cpu_examples_per_s", "wall_examples_per_s"):
            out[f"{name}_{key}_median"] = statistics.median(r[key] for r in runs[name])
    if "baseline" in trees:
        for key in ("cpu_examples_per_s", "wall_examples_per_s"):
            out[f"speedup_{key}"] = round(out[f"current_{key}_median"] / out[f"baseline_{key}_median"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
