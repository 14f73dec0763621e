"""First visit and warm rerun of every app page on a built store (AppTest), each page in a fresh process.

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python benchmarks/pages_first_visit.py ARTIFACTS_DIR [--reruns 5]

The pages are the ones ``app.py`` routes to, in menu order. For each page a fresh process (cold Streamlit caches,
as after a server start) opens the app (the Overview, the default page: its time is the baseline in the same
run), then switches to the page: that run is the page's **first visit**, every loader the page needs included
(nothing is warmed by an earlier page). ``--pause S`` waits S seconds between the two, as a person reading the
Overview before clicking does (the app imports torch, FAISS and LightGBM in the background once its first page has
drawn; with no pause the switch runs alongside that import). Then ``--reruns`` reruns with the same widgets (what
a user sees after touching another widget): their median is the **warm rerun**. Any exception or error the page shows is listed.
A JSON line per page (with the process's peak RSS), then a table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._child import REPO, run_child  # noqa: E402

CHILD = """
import json, os, statistics, sys, time
from streamlit.testing.v1 import AppTest
app, page, reruns, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
at = AppTest.from_file(app, default_timeout=900)
t = time.perf_counter(); at.run(); home = time.perf_counter() - t
time.sleep(pause)
t = time.perf_counter(); at.switch_page(page); at.run(); first = time.perf_counter() - t
warm = []
for _ in range(reruns):
    t = time.perf_counter(); at.run(); warm.append(time.perf_counter() - t)
errs = [str(e.value)[:200] for e in at.exception] + [str(e.body)[:200] for e in at.error]
print(json.dumps({"page": page, "home_s": home, "first_s": first, "warm_ms": 1000 * statistics.median(warm),
                  "warm_runs_ms": [round(1000 * w, 1) for w in warm], "errors": errs}))
"""


def app_pages(app: Path) -> list[str]:
    """The page files ``app.py`` routes to, in menu order."""
    return re.findall(r'st\.Page\(\s*"(pages/[^"]+\.py)"', app.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", type=Path)
    p.add_argument("--reruns", type=int, default=5)
    p.add_argument("--pause", type=float, default=0.0,
                   help="seconds between the opening run and the switch to the page (default 0)")
    p.add_argument("--pages", nargs="+", help="only these page files (default: every page of app.py)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    env = {**os.environ, "RECSYS_ARTIFACTS": str(args.artifacts.resolve()), "PYTHONPATH": str(REPO),
           "OPENBLAS_NUM_THREADS": "1"}
    rows, pages = [], app_pages(REPO / "app.py")
    for page in args.pages or pages:
        argv = [sys.executable, "-c", CHILD, str(REPO / "app.py"), page, str(args.reruns), str(args.pause)]
        out, peak = run_child(argv, env=env, cwd=REPO)
        row = {**json.loads(out.strip().splitlines()[-1]), "peak_mib": round(peak)}
        if page == pages[0]:  # the default page: its first visit is the app's opening run, not a switch to itself
            row["first_s"] = row["home_s"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\npause between the opening run and the switch: {args.pause:g} s")
    print(f"\n| page | first visit | warm rerun (median of {args.reruns}) | Overview in the same process | "
          f"peak RSS | errors |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['page']} | {r['first_s']:.2f} s | {r['warm_ms']:.0f} ms | {r['home_s']:.2f} s | "
              f"{r['peak_mib'] / 1024:.2f} GiB | {'; '.join(r['errors']) or 'none'} |")
    print(f"\nmedian first visit {statistics.median(r['first_s'] for r in rows):.2f} s, worst "
          f"{max(r['first_s'] for r in rows):.2f} s; worst warm rerun {max(r['warm_ms'] for r in rows):.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
