"""The whole build of real-size files, one stage at a time, each in a fresh process: its seconds and peak RSS.

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/full_build.py --artifacts /work/bench/octnov \\
        --input /work/bench/data/oct-109.9M-2019-10.csv /work/bench/data/oct-109.9M-2019-11.csv

Each stage runs in its own child: the events stage as ``recsys.build.build(root, inputs, only=[], force=True)``, a
derived stage as its own stage function (``force=True``, the stages before it as they are) in a build
transaction. So a stage's peak is its own (``wait4``'s ``ru_maxrss``), and a stage that does not fit fails alone
with its error while the stages before it stay built. ``--stages`` picks some (the ones before them must be
built); ``--keep`` reuses stages already up to date instead of forcing them. One JSON line per stage on stdout,
and a summary line at the end; ``--json FILE`` also appends them to FILE.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._child import REPO, run_child  # noqa: E402
from recsys.build import STAGES  # noqa: E402

# the events stage through build() (ingest of the inputs); a derived stage through its own function, so that
# forcing it does not force the ingest too
CHILD = """
import json, sys, time
from pathlib import Path
from recsys.build import STAGES, build
from recsys.journal import build_transaction
root, stage, force, inputs = sys.argv[1], sys.argv[2], sys.argv[3] == "1", [Path(p) for p in sys.argv[4:]]
t0 = time.perf_counter()
if stage == "events":
    summary = build(root, inputs, only=[], force=force)["events"]
else:
    with build_transaction(root):
        manifest, built = next(s for s in STAGES if s.name == stage).function()(root, force=force)
    summary = {"built": built, "duration_s": manifest["duration_s"]}
print(json.dumps({"summary": summary, "wall_s": time.perf_counter() - t0}))
"""


def main(argv: list[str] | None = None) -> int:
    names = ["events"] + [s.name for s in STAGES]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", nargs="+", required=True, type=Path)
    p.add_argument("--artifacts", required=True, type=Path)
    p.add_argument("--stages", nargs="+", choices=names, default=names)
    p.add_argument("--keep", action="store_true", help="do not force stages that are up to date")
    p.add_argument("--json", type=Path, help="also append the JSON lines to this file")
    args = p.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    rows, load = [], os.getloadavg()[0]
    for stage in [n for n in names if n in args.stages]:
        t0 = time.perf_counter()
        out, peak = run_child([sys.executable, "-c", CHILD, str(args.artifacts), stage, "0" if args.keep else "1",
                               *map(str, args.input)], env=env, cwd=REPO)
        got = json.loads(out.strip().splitlines()[-1])
        row = {"stage": stage, "seconds": round(time.perf_counter() - t0, 1),
               "stage_s": round(float((got["summary"] or {}).get("duration_s", float("nan"))), 1),
               "built": bool((got["summary"] or {}).get("built")), "peak_gib": round(peak / 1024, 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
    total = {"total_seconds": round(sum(r["seconds"] for r in rows), 1),
             "max_peak_gib": max(r["peak_gib"] for r in rows),
             "inputs": [str(p) for p in args.input], "bytes": [p.stat().st_size for p in args.input],
             "load_avg_at_start": load}
    print(json.dumps(total), flush=True)
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(total) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
