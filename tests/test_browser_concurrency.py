"""Twenty browser sessions at once against one app server, each on its own page and its own filters (issue 12).

Each session opens an Explore page by a link with a brand of its own; all twenty load at the same moment. Every
session must draw its page without an error box, stay on its own page and keep its own brand (in the URL and in
the sidebar's Brand widget): a filter leaking between sessions (shared session state, a cached widget value)
would show another session's brand. Page times go to ``$CONCURRENCY_REPORT`` (JSON) when it is set; the figures
in benchmarks/RESULTS.md come from that."""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 20
PAGES = ["/funnel", "/temporal", "/brands_categories", "/users_sessions"]
# drawn: a chart (every one of these pages has one) or an error box, and no script run in progress
LOADED = ("() => document.querySelector('[data-testid=stMain] .js-plotly-plot, [data-testid=stException]') && "
          "document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'")
BRAND_WIDGET = "() => document.querySelector('[data-testid=stSidebar] .st-key-brand input')?.value ?? null"


def _brands(root: Path, n: int) -> list[str]:
    from recsys.aggregates.query import brands_for, filter_options, open_aggregates
    con = open_aggregates(root)
    try:
        brands = [b for b in brands_for(filter_options(con), None) if b and b.isascii() and b.isalnum()]
    finally:
        con.close()
    assert len(brands) >= 2, "the demo store has too few brands for this test"
    return [brands[i % len(brands)] for i in range(n)]


def _server_cpu_seconds() -> float:
    """CPU seconds used so far by this process's `streamlit run` children (from /proc; 0 where there is none)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and b"streamlit" in (stat.parent / "cmdline").read_bytes():
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


def run_sessions(root: Path, plan: list[tuple[str, str]]) -> tuple[dict, list[dict]]:
    """One session alone (the server's cold start is not a concurrency cost), then every (page, brand) of ``plan``
    at the same moment, against one `streamlit run` over ``root``."""
    import asyncio
    import concurrent.futures

    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS, streamlit_server

    async def visit(browser, url: str, path: str, brand: str) -> dict:
        ctx = await browser.new_context(viewport={"width": 1300, "height": 900})
        pg = await ctx.new_page()
        outside: list[str] = []
        pg.on("request", lambda r: None if urlparse(r.url).hostname in ("127.0.0.1", None) or
              r.url.startswith(("data:", "blob:", "about:")) else outside.append(r.url))
        try:
            t0 = time.perf_counter()
            await pg.goto(f"{url}{path}?brand={brand}", timeout=400_000)
            await pg.wait_for_function(LOADED, timeout=400_000, polling=250)
            seconds = time.perf_counter() - t0
            await pg.wait_for_timeout(500)  # the URL update follows the run
            try:  # the sidebar may still be re-rendering when the last chart has drawn
                await pg.wait_for_function(f"() => ({BRAND_WIDGET})() !== null", timeout=60_000, polling=250)
            except PlaywrightTimeout:
                pass  # reported below as a missing Brand widget
            return {"path": path, "brand": brand, "seconds": round(seconds, 2), "url": pg.url,
                    "errors": await pg.locator('[data-testid="stException"]').count(),
                    "charts": await pg.locator(".js-plotly-plot").count(),
                    "widget": await pg.evaluate(BRAND_WIDGET), "outside": outside}
        finally:
            await ctx.close()

    async def wave(url: str) -> tuple[dict, list[dict]]:
        async with async_playwright() as p:
            b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                alone = await visit(b, url, *plan[0])
                cpu = _server_cpu_seconds()
                results = list(await asyncio.gather(*[visit(b, url, path, brand) for path, brand in plan]))
                alone["server_cpu_seconds_for_the_wave"] = round(_server_cpu_seconds() - cpu, 1)
                return alone, results
            finally:
                await b.close()

    with streamlit_server(root) as url:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # sync Playwright may hold this thread's loop
            return pool.submit(asyncio.run, wave(url)).result()


def test_twenty_simultaneous_sessions_each_keep_their_own_filters(demo_artifacts):
    from tests.conftest import CHROMIUM
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    brands = _brands(demo_artifacts, SESSIONS)
    alone, results = run_sessions(demo_artifacts, [(PAGES[i % len(PAGES)], brands[i]) for i in range(SESSIONS)])

    for r in results:
        where = f"{r['path']} brand={r['brand']}"
        assert r["errors"] == 0, f"{where}: an error box"
        assert r["charts"] > 0, f"{where}: no chart drew"
        assert urlparse(r["url"]).path == r["path"], f"{where}: ended on {r['url']}"
        assert parse_qs(urlparse(r["url"]).query).get("brand") == [r["brand"]], f"{where}: URL is {r['url']}"
        assert r["widget"] == r["brand"], f"{where}: the Brand widget shows {r['widget']!r}"
        assert r["outside"] == [], f"{where}: requests left 127.0.0.1: {r['outside'][:3]}"
    times = sorted(r["seconds"] for r in results)
    # the app server's own CPU time for the twenty page runs: the rest of the wall time is the twenty headless
    # Chromium renderers drawing their charts on the same cores
    report = {"sessions": SESSIONS, "pages": PAGES, "alone_seconds": alone["seconds"],
              "server_cpu_seconds": alone["server_cpu_seconds_for_the_wave"],
              "p50_seconds": round(statistics.median(times), 1),
              "p95_seconds": round(times[min(len(times) - 1, int(0.95 * len(times)))], 1),
              "max_seconds": times[-1], "cpus": os.cpu_count(),
              "per_page": {p: sorted(r["seconds"] for r in results if r["path"] == p) for p in PAGES}}
    if os.environ.get("CONCURRENCY_REPORT"):
        Path(os.environ["CONCURRENCY_REPORT"]).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
