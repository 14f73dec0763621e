"""The Affinity page in a real browser: a brand named like an HTML tag shows as text and runs nothing. (That the
network draws, offline, under every threshold move is in tests/test_browser_pages.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, network_frame, record_outside_requests, streamlit_server

pytestmark = pytest.mark.browser
XSS = "<img src=x onerror=alert(1)>"


def open_affinity(page, base: str) -> None:
    page.goto(f"{base}/affinity")
    page.get_by_role("heading", name="Product affinity").wait_for(timeout=60_000)


def _xss_csv(path: Path) -> None:
    """A tiny store where an item of brand XSS is co-viewed with a phone in many sessions."""
    rows = ["event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"]
    for s in range(300):
        pans = [(3 + (s + j) % 7, "kitchen.pan", "pots", 20.0) for j in (0, 1)]
        pair = [(1, "electronics.smartphone", XSS, 99.0), (2, "electronics.smartphone", "acme", 120.0)] \
            if s % 3 == 0 else pans
        for j, (pid, code, brand, price) in enumerate(pair):
            rows.append(f"2019-10-01 00:{(s // 60) % 60:02d}:{(s + j) % 60:02d} UTC,view,{pid},{2000 + pid},{code},"
                        f"{brand},{price},{500 + s},sess-{s}")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def xss_server(tmp_path_factory):
    """A streamlit server over a store with the XSS brand (events + rules stages only)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    from recsys.ingest.reader import IngestParams
    from recsys.ingest.stage import build_events
    from recsys.rules.stage import build_rules_stage, load_rules
    root = tmp_path_factory.mktemp("xss-store")
    _xss_csv(root / "xss.csv")
    build_events(root, [root / "xss.csv"], IngestParams(source="files"))
    build_rules_stage(root)
    assert load_rules(root).rules["antecedent"].str.contains(XSS, regex=False).any()
    with streamlit_server(root) as url:
        yield url


def test_xss_brand_shows_as_text_and_runs_nothing(xss_server, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside = record_outside_requests(ctx)
    page = ctx.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        open_affinity(page, xss_server)
        frame = network_frame(page)
        labels = frame.evaluate("network.body.data.nodes.get().map(n => n.label)")
        assert any(XSS in label for label in labels)  # the literal text, drawn on the canvas
        assert frame.locator("img").count() == 0 and page.locator("img[src='x']").count() == 0
        # hover the XSS node: vis-network shows its tooltip as text
        node = frame.evaluate("network.body.data.nodes.get().find(n => n.label.includes('onerror')).id")
        pos = frame.evaluate("id => network.canvasToDOM(network.getPositions([id])[id])", node)
        box = page.locator("iframe").first.bounding_box()
        page.mouse.move(box["x"] + pos["x"], box["y"] + pos["y"])
        tip = frame.locator(".vis-tooltip")
        tip.wait_for(state="visible", timeout=10_000)
        assert XSS in tip.inner_text() and tip.locator("img").count() == 0
        frame.wait_for_timeout(500)
        assert dialogs == [] and outside == []
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        ctx.close()
