"""Shared fixtures: a small demo store built once per test session, the real REES46 head when present."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAD_CSV = REPO.parent / "shared" / "data" / "rees46-2019-Oct-head.csv"
SMALL_DEMO_EVENTS = 40_000


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
