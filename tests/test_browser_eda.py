"""The Explore pages in a real browser: every page draws its Plotly charts offline with no error, and the shared
filter lives in the URL (a reloaded link keeps it)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser

PAGES = {"funnel": "Funnel", "temporal": "Temporal patterns", "brands_categories": "Brands & categories",
         "users_sessions": "Users & sessions"}


def settle(page) -> None:
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)


def assert_clean(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


@pytest.mark.parametrize("path", list(PAGES))
def test_eda_page_draws_its_charts(app_server, page, path):
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.goto(f"{app_server}/{path}")
    page.get_by_role("heading", name=PAGES[path]).wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    settle(page)
    # the first page of a fresh server may still be drawing its later charts: wait for them, then check
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=30_000)
    assert page.locator(".js-plotly-plot .main-svg").count() > 0  # drawn, not just mounted
    assert_clean(page)
    assert outside == []


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
