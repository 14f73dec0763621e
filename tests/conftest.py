"""Shared fixtures: a small demo store built once per test session, the real REES46 head when present."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAD_CSV = REPO.parent / "shared" / "data" / "rees46-2019-Oct-head.csv"
SMALL_DEMO_EVENTS = 40_000


# Fixtures that build a store (a few seconds to minutes): a test that uses one, directly or through another
# fixture, is marked `slow`, so the quick loop (-m "not slow and not browser") runs only tests that build nothing.
# The Spark session (a JVM start, ~10 s) counts as one too.
BUILDS = {"demo_artifacts", "head_artifacts", "uci_artifacts", "no_purchase_artifacts", "wholesale_artifacts",
          "spark_spec"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BUILDS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _warm_router(monkeypatch):
    """AppTests run as on a warm server: every run goes through app.py's ``st.navigation``.

    AppTest resets Streamlit's class-wide "this app uses a pages/ folder" flag before every run, so each run would
    start the way only a fresh server's first visits do (the page alone, then ``ui.router.require_router``
    reruns it through app.py), and that rerun drops the run's button clicks. On a real server the flag is cleared
    by the first routed run for good. The fresh-server path has its own browser test (test_browser_app.py).
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class WarmPagesManager(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", WarmPagesManager)


@pytest.fixture(scope="session")
def spark_spec():
    """The Spark engine in local[2] mode (one session per test run); skips when pyspark or Java is missing."""
    pytest.importorskip("pyspark")
    from recsys.spark_engine import SparkSpec, SparkUnavailable, session, stop_sessions
    spec = SparkSpec("local[2]", {"spark.sql.shuffle.partitions": "4"})
    try:
        session(spec)
    except SparkUnavailable as exc:
        pytest.skip(str(exc))
    yield spec
    stop_sessions()


@pytest.fixture(scope="session")
def head_csv() -> Path:
    """The real REES46 head (17,435 rows, truncated last line); skips when ../shared is absent."""
    if not HEAD_CSV.exists():
        pytest.skip("../shared/data/rees46-2019-Oct-head.csv is not present")
    return HEAD_CSV


@pytest.fixture(scope="session")
def demo_artifacts(tmp_path_factory) -> Path:
    """A full build (every stage) of a small demo store, shared by integration tests and AppTests."""
    from recsys.build import build
    root = tmp_path_factory.mktemp("demo-artifacts")
    build(root, demo_events=SMALL_DEMO_EVENTS, seed=7)
    return root


@pytest.fixture(scope="session")
def head_artifacts(tmp_path_factory, head_csv) -> Path:
    """A full build over the real head."""
    from recsys.build import build
    root = tmp_path_factory.mktemp("head-artifacts")
    build(root, [head_csv])
    return root


@pytest.fixture(scope="session")
def uci_artifacts(tmp_path_factory) -> Path:
    """A full build (every stage) over a UCI Online Retail store: purchases only, no categories."""
    from recsys.build import build
    from tests.stores import synthetic_uci
    d = tmp_path_factory.mktemp("uci")
    root = d / "art"
    build(root, [synthetic_uci(d / "online_retail.csv")])
    return root


@pytest.fixture(scope="session")
def no_purchase_artifacts(tmp_path_factory) -> Path:
    """Events and aggregates of a small demo store with every purchase row removed (Customers, Retention)."""
    import pandas as pd

    from recsys.build import build
    from recsys.ingest.demo import write_demo_csv
    d = tmp_path_factory.mktemp("no-purchases")
    write_demo_csv(d / "full.csv", events=8_000, seed=3)
    df = pd.read_csv(d / "full.csv", dtype=str, keep_default_na=False)
    df[df["event_type"] != "purchase"].to_csv(d / "views.csv", index=False)
    build(d / "art", [d / "views.csv"], only=["aggregates"])
    return d / "art"


@pytest.fixture(scope="session")
def wholesale_artifacts(tmp_path_factory) -> Path:
    """Events and aggregates of a small wholesale store in the UCI Online Retail format (a year of invoices)."""
    from recsys.build import build
    from recsys.ingest.demo_wholesale import write_wholesale_uci
    d = tmp_path_factory.mktemp("wholesale")
    write_wholesale_uci(d / "online_retail.csv", lines=30_000, seed=7)
    build(d / "art", [d / "online_retail.csv"], only=["aggregates"])
    return d / "art"


@pytest.fixture()
def rr_dir(tmp_path) -> Path:
    """The hand-made RetailRocket folder of tests/stores.py."""
    from tests.stores import write_rr_dir
    return write_rr_dir(tmp_path / "retailrocket")


@pytest.fixture()
def app_env(demo_artifacts, monkeypatch):
    """Point the app at the small demo build; returns a factory for AppTest on app.py."""
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(demo_artifacts))

    def make(timeout: float = 60) -> "AppTest":
        return AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)

    return make


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def api_server(artifacts: Path):
    """``python -m recsys serve`` on a free loopback port; yields its base URL once ``/health`` answers."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "recsys", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--artifacts", str(artifacts)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.25)
        else:
            pytest.fail("the API did not answer /health within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(artifacts: Path):
    """A real `streamlit run app.py` on a free loopback port over ``artifacts``; yields its base URL."""
    import subprocess
    import sys
    import time
    import urllib.request
    port = _free_port()
    env = {**os.environ, "RECSYS_ARTIFACTS": str(artifacts)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("streamlit did not become healthy within 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def app_server(demo_artifacts):
    """The app served over the small demo build for the whole test session; yields its base URL."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    with streamlit_server(demo_artifacts) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    """A fresh browser page; fails the test if the page shows a Streamlit exception box."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


# ---- browser helpers shared by the browser suites (tests/test_browser_*.py, benchmarks/browser_sessions.py) ----

LOCAL_HOSTS = ("127.0.0.1", "localhost")
# Counts finished script runs: the app root's data-test-script-state leaves "running" once per run, so "a run
# ended after this interaction" can be waited for instead of guessing with a sleep.
RUN_WATCH_JS = """(() => {
  window.__stRunsDone = 0;
  new MutationObserver(ms => { for (const m of ms) if (m.oldValue === 'running') window.__stRunsDone++; })
    .observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state']});
})();"""
SETTLED_JS = ("n => window.__stRunsDone > n && document.querySelector('[data-testid=stApp]')"
              "?.getAttribute('data-test-script-state') === 'notRunning'")
# Non-white pixels on the first canvas of a document (the pyvis network): 0 when nothing was drawn.
DRAWN_PIXELS_JS = """() => {
  const c = document.querySelector('canvas');
  if (!c || !c.width || !c.height) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) n++;
  return n; }"""


def is_outside(url: str) -> bool:
    """True for a request that leaves the machine (data:, blob: and about: URLs stay inside the page)."""
    from urllib.parse import urlparse
    u = urlparse(url)
    return u.scheme not in ("data", "blob", "about") and u.hostname not in LOCAL_HOSTS


def record_outside_requests(context) -> list[str]:
    """Every request of a browser context (all its pages and iframes) that leaves 127.0.0.1, as it happens."""
    outside: list[str] = []
    context.on("request", lambda r: outside.append(r.url) if is_outside(r.url) else None)
    return outside


def watch_runs(context) -> None:
    """Make every page of ``context`` count its finished Streamlit script runs (see ``settle``)."""
    context.add_init_script(RUN_WATCH_JS)


def runs_done(page) -> int:
    return page.evaluate("window.__stRunsDone || 0")


def settle(page, after: int = 0, timeout: float = 90_000) -> None:
    """Wait until a script run that ended after ``after`` finished runs has left the app idle (the context must
    be watched with ``watch_runs``; ``after=-1`` waits for idle only), then until the running-man status widget is
    gone. A timeout says what the app was doing, so a flake can be told from a hang."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_function(SETTLED_JS, arg=after, timeout=timeout)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout)
    except PlaywrightTimeout as e:
        raise AssertionError(f"the app did not settle after run {after}: {app_state(page)}") from e


def app_state(page) -> dict:
    """Runs counted by ``watch_runs``, the app's script state and the status widget's text (for error messages)."""
    return page.evaluate("""() => ({runs: window.__stRunsDone, state: document.querySelector('[data-testid=stApp]')
        ?.getAttribute('data-test-script-state'), status: document.querySelector('[data-testid=stStatusWidget]')
        ?.innerText ?? null})""")


def error_boxes(page) -> list[str]:
    """Texts of the Streamlit exception and error boxes on the page (none on a healthy page)."""
    return page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').all_inner_texts()


def network_frame(page, timeout: float = 60_000):
    """The frame of the pyvis iframe, once vis-network holds nodes."""
    page.frame_locator("iframe").first.locator("canvas").first.wait_for(timeout=timeout)
    frame = page.locator("iframe").first.element_handle().content_frame()
    frame.wait_for_function("typeof network !== 'undefined' && network.body.data.nodes.length > 0",
                            timeout=timeout)
    return frame


def drawn_pixels(frame) -> int:
    """Non-white pixels on the network canvas (0 when nothing was drawn)."""
    return frame.evaluate(DRAWN_PIXELS_JS)


def wait_drawn(frame, pixels: int = 500, timeout: float = 30_000) -> int:
    """Wait until the network canvas shows at least ``pixels`` non-white pixels; returns the count."""
    frame.wait_for_function(f"({DRAWN_PIXELS_JS})() >= {pixels}", timeout=timeout)
    return drawn_pixels(frame)


def settle_load(page, timeout: float = 90_000) -> None:
    """Wait after a ``goto`` until a run has drawn the page's title (or an error box) and the app is idle. (A fresh
    server's first run ends early: ui.router reruns it through the router, so "one run ended" is not enough.)"""
    page.wait_for_function("() => window.__stRunsDone > 0 && document.querySelector('[data-testid=stMain] h1, "
                           "[data-testid=stException], [data-testid=stAlertContentError]') "
                           "&& document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
                           " === 'notRunning'", timeout=timeout)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout)
