"""The demo store's first start: a full build into an empty artifacts directory (generation, ingest, every stage),
with the evaluation beside the model stage (the default) against the same build with every stage in turn
(``RECSYS_BUILD_PARALLEL=0``), alternating, in one run; then checks that both gave the same artifacts.

    python benchmarks/first_start.py --runs 3

Prints each build's wall time and peak memory (of the larger process), the medians and their ratio, and the result
of ``benchmarks/same_artifacts.py`` on the last pair.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _child import REPO, run_child
MODES = {"beside": "1", "in turn": "0"}


def _one(root: Path, parallel: str, events: int | None) -> tuple[float, float]:
    """(wall seconds, peak MB of the largest process: the build's or its second process's, as ``wait4`` reports
    for a child and the children it waited for)."""
    cmd = [sys.executable, "-m", "recsys", "build", "--artifacts", str(root)]
    if events:
        cmd += ["--events", str(events)]
    env = {**os.environ, "RECSYS_BUILD_PARALLEL": parallel, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    _, peak_mb = run_child(cmd, env=env, cwd=REPO)
    return time.perf_counter() - t0, peak_mb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="builds per mode (alternating)")
    ap.add_argument("--events", type=int, default=None, help="demo store size (default: the app's)")
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average at start: {f.read().split()[:3]}")
    work = Path(tempfile.mkdtemp(prefix="first-start-"))
    walls: dict[str, list[float]] = {m: [] for m in MODES}
    try:
        for r in range(args.runs):
            for mode, flag in MODES.items():
                root = work / f"{mode.replace(' ', '-')}-{r}"
                wall, peak = _one(root, flag, args.events)
                walls[mode].append(wall)
                print(f"run {r + 1} {mode:8s} {wall:7.1f} s  peak {peak:,.0f} MB", flush=True)
                if r < args.runs - 1:
                    shutil.rmtree(root)
        med = {m: statistics.median(v) for m, v in walls.items()}
        print(f"median: beside {med['beside']:.1f} s, in turn {med['in turn']:.1f} s, "
              f"ratio {med['beside'] / med['in turn']:.2f}x")
        last = args.runs - 1
        same = subprocess.run([sys.executable, str(REPO / "benchmarks" / "same_artifacts.py"),
                               str(work / f"beside-{last}"), str(work / f"in-turn-{last}")],
                              capture_output=True, text=True)
        print("same artifacts:", "yes" if same.returncode == 0 else f"NO\n{same.stdout}{same.stderr}")
        return same.returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
