"""Warm script-run time of the Retention and Customers pages, with the Funnel page as a baseline in the same run.

For each page and filter setting (all data; the biggest top-level category), medians of ``--runs``:
- **uncached**: the run right after the query and figure caches are cleared, so every aggregate query of the page
  runs (the process, imports, the in-memory cubes and the filter options stay warm, as in a running app);
- **cached**: a rerun with the same filters (what a user sees after touching another widget);
- **library**: the page's library calls alone (the queries it makes with its default switches), no Streamlit.

    python benchmarks/analyst_pages.py --artifacts /tmp/h3_demo --runs 7
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PAGES = ("funnel", "retention", "customers")


def library_calls(page: str) -> list[Callable]:
    """The queries a page makes with its default switches (the Funnel's main ones as the baseline)."""
    from recsys.aggregates import customers as C
    from recsys.aggregates import funnel as F
    from recsys.aggregates import retention as R
    if page == "funnel":
        return [F.funnel_totals, F.funnel_steps, F.session_funnel, F.cart_abandonment, F.funnel_by_month,
                lambda con, f: F.funnel_by(con, f, dim="category_top", n=10),
                lambda con, f: F.funnel_by(con, f, dim="brand", n=10)]
    if page == "retention":
        return [lambda con, f: R.average_curve(R.cohorts(con, f, "week", "first_event", "active"), 1)]

    def rfm_tables(con, f):
        buyers = C.rfm(con, f)
        return C.summarize(buyers, C.data_span(con, f)["days"], 90), C.grid(buyers)
    return [rfm_tables, lambda con, f: C.segment_top(con, f, "champions"), lambda con, f: C.pareto(con, f, "customer")]


def time_library(root: Path, page: str, f, runs: int) -> float:
    from recsys.aggregates.query import open_aggregates
    con = open_aggregates(root)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for call in library_calls(page):
            call(con.cursor(), f)
        times.append(time.perf_counter() - t)
    return round(1000 * statistics.median(times), 1)


def timed(at) -> float:
    t = time.perf_counter()
    at.run()
    if at.exception:
        raise RuntimeError(f"page raised: {at.exception[0].value}")
    return time.perf_counter() - t


def bench(root: Path, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    from ui import eda as eda_ui
    from recsys.aggregates.query import EdaFilters, filter_options, open_aggregates
    os.environ["RECSYS_ARTIFACTS"] = str(root)
    cat = filter_options(open_aggregates(root))["categories"][0]
    settings = {"all data": None, f"category={cat}": cat}
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
    out: dict = {}
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        at.run()  # warm: connection, options, imports
        for name, category in settings.items():
            at.selectbox(key="cat").set_value(category or eda_ui.ALL_CATEGORIES)
            uncached, cached = [], []
            for _ in range(runs):
                eda_ui.load.clear()
                eda_ui.figure.clear()
                uncached.append(timed(at))
                cached.append(timed(at))
            lib = time_library(root, page, EdaFilters(category=category), runs)
            out.setdefault(page, {})[name] = {"uncached_ms": round(1000 * statistics.median(uncached), 1),
                                              "cached_ms": round(1000 * statistics.median(cached), 1),
                                              "uncached_max_ms": round(1000 * max(uncached), 1),
                                              "library_ms": lib}
            r = out[page][name]
            print(f"{page:10s} {name:32s} uncached {r['uncached_ms']:7.1f} ms (max {r['uncached_max_ms']:7.1f})  "
                  f"cached {r['cached_ms']:6.1f} ms  library {lib:7.1f} ms", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, required=True, help="a built artifacts directory (events + aggregates)")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args(argv)
    from streamlit.logger import set_log_level
    set_log_level("error")
    from recsys.artifacts import read_manifest
    from recsys.aggregates.stage import build_aggregates_stage
    build_aggregates_stage(args.artifacts)  # no-op when up to date
    events = read_manifest(args.artifacts, "events")["rows"]["events"]
    agg = read_manifest(args.artifacts, "aggregates") or {}
    rows = agg.get("rows", {})
    print(f"artifacts {args.artifacts}: {events:,} events; retention rows {rows.get('retention')}, product_sales "
          f"rows {rows.get('product_sales')}, users rows {rows.get('users')}; load {os.getloadavg()[0]:.2f}",
          flush=True)
    result = {"artifacts": str(args.artifacts), "events": events, "runs": args.runs, "pages": bench(args.artifacts,
                                                                                                      args.runs)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
