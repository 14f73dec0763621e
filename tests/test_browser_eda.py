"""The Explore pages in a real browser: the shared filter lives in the URL, and a link opened on another Explore
page keeps it. (Every page's charts under filter moves, offline, are in tests/test_browser_pages.py.)"""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser


def settle(page) -> None:
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)


def assert_clean(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_filter_is_kept_in_the_url(app_server, page):
    page.goto(f"{app_server}/funnel")
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option").nth(1).click()  # the biggest top-level category
    page.wait_for_function("() => new URLSearchParams(location.search).has('cat')", timeout=30_000)
    settle(page)
    cat = parse_qs(urlparse(page.url).query)["cat"][0]
    page.goto(page.url.replace("/funnel", "/temporal"))  # a shared link opened on another Explore page
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    assert cat in page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first.inner_text()
    assert_clean(page)
