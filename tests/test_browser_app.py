"""The app in a real browser: the Overview draws its KPIs, offline, with no error box."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def test_overview_in_browser_offline(app_server, page):
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.goto(app_server)
    page.get_by_role("heading", name="Store overview").wait_for(timeout=60_000)
    page.locator('[data-testid="stMetric"]').first.wait_for()
    assert page.locator('[data-testid="stMetric"]').count() == 8
    assert page.get_by_text("Events", exact=True).count() >= 1
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert outside == []
