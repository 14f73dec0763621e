"""The app in a real browser: a deep link opened as a fresh server's first visit goes through the router.
(Every page, offline and with its widgets moved, is in tests/test_browser_pages.py.)"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


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
