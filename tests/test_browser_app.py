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


def test_deep_link_as_first_visit_goes_through_the_router(demo_artifacts, page):
    """A shared URL opened on a freshly started server shows the app's sections, not a raw pages/ listing."""
    from tests.conftest import streamlit_server
    with streamlit_server(demo_artifacts) as url:
        page.goto(f"{url}/funnel")
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_text("Recommender explorer").wait_for(timeout=60_000)
        assert nav.get_by_text("eda ui").count() == 0 and nav.get_by_text("common").count() == 0
        assert page.url.endswith("/funnel") or "/funnel?" in page.url
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
