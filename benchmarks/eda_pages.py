"""Script-run time of every Explore page under several filter settings (AppTest, in-process, warm process).

For each page and filter setting it times, median of ``--runs``:
- **uncached**: the run right after the filters change, with the query and figure caches cleared, so every
  aggregate query runs and every figure is built (the process, imports, the in-memory cubes and the filter
  options stay warm, as in a running app);
- **cached**: a rerun with the same filters (what a user sees when touching another widget or coming back).

    python benchmarks/eda_pages.py                                  # the demo store (built under /tmp)
    python benchmarks/eda_pages.py --artifacts /work/bench/artifacts-oct --runs 5
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PAGES = ("funnel", "temporal", "brands_categories", "users_sessions")


def filter_settings(root: Path) -> dict[str, dict]:
    """All data; one week; the biggest top category; it with its biggest brand; it over one week; another brand
    alone over one week."""
    from recsys.aggregates.query import brands_for, filter_options, open_aggregates
    from recsys.aggregates.stage import build_aggregates_stage
    build_aggregates_stage(root)
    o = filter_options(open_aggregates(root))
    cat = o["categories"][0]
    from recsys.schema import UNKNOWN_BRAND
    brand = [b for b in brands_for(o, cat) if b != UNKNOWN_BRAND][0]
    other = [b for b in brands_for(o, None) if b not in (UNKNOWN_BRAND, brand)][0]
    week = (o["first_day"] + dt.timedelta(days=7), o["first_day"] + dt.timedelta(days=13))
    every = (o["first_day"], o["last_day"])
    return {"all days, all": {"cat": None, "brand": None, "dates": every},
            "one week": {"cat": None, "brand": None, "dates": week},
            f"category={cat}": {"cat": cat, "brand": None, "dates": every},
            f"{cat} + brand={brand}": {"cat": cat, "brand": brand, "dates": every},
            f"{cat}, one week": {"cat": cat, "brand": None, "dates": week},
            f"brand={other}, one week": {"cat": None, "brand": other, "dates": week}}


def apply(at, setting: dict) -> None:
    """Set the shared filter widgets (the next run applies them)."""
    from ui.eda import ALL_BRANDS, ALL_CATEGORIES
    at.selectbox(key="cat").set_value(setting["cat"] or ALL_CATEGORIES)
    if setting["brand"] and setting["brand"] not in at.selectbox(key="brand").options:
        at.run()  # the brand list depends on the category
    at.selectbox(key="brand").set_value(setting["brand"] or ALL_BRANDS)
    at.date_input(key="dates").set_value(setting["dates"])


def timed(at) -> float:
    t = time.perf_counter()
    at.run()
    dt_ = time.perf_counter() - t
    if at.exception:
        raise RuntimeError(f"page raised: {at.exception[0].value}")
    return dt_


def bench(root: Path, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    from ui import eda as eda_ui
    os.environ["RECSYS_ARTIFACTS"] = str(root)
    settings = filter_settings(root)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600).run()
    out: dict = {}
    t = time.perf_counter()
    at.switch_page(f"pages/{PAGES[0]}.py").run()
    out["first_explore_page_ms"] = round(1000 * (time.perf_counter() - t), 1)
    print(f"first Explore page after start (loads the cubes into memory): {out['first_explore_page_ms']:.0f} ms")
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        at.run()  # warm: connection, options, imports
        for name, setting in settings.items():
            uncached, cached = [], []
            for _ in range(runs):
                eda_ui.load.clear()
                eda_ui.figure.clear()
                apply(at, setting)
                uncached.append(timed(at))
                cached.append(timed(at))
            out.setdefault(page, {})[name] = {"uncached_ms": round(1000 * statistics.median(uncached), 1),
                                              "cached_ms": round(1000 * statistics.median(cached), 1),
                                              "uncached_max_ms": round(1000 * max(uncached), 1)}
            print(f"{page:18s} {name:40s} uncached {out[page][name]['uncached_ms']:7.1f} ms  "
                  f"cached {out[page][name]['cached_ms']:6.1f} ms", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifacts", type=Path, help="a built artifacts directory (default: the demo store)")
    p.add_argument("--demo-dir", type=Path, default=Path("/tmp/eda-bench-demo"))
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args(argv)
    from streamlit.logger import set_log_level
    set_log_level("error")
    root = args.artifacts
    if root is None:
        from recsys.build import build
        root = args.demo_dir
        build(root, only=["aggregates"])  # the default demo store (400k events) and this stage only
    from recsys.artifacts import read_manifest
    events = read_manifest(root, "events")["rows"]["events"]
    agg = read_manifest(root, "aggregates") or {}
    print(f"artifacts {root}: {events:,} events; aggregates rows {agg.get('rows')}", flush=True)
    result = {"artifacts": str(root), "events": events, "runs": args.runs, "pages": bench(root, args.runs)}
    worst = max(v["uncached_ms"] for pg in result["pages"].values() if isinstance(pg, dict) for v in pg.values())
    print(f"worst median uncached run: {worst:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
