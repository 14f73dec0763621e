"""Product explorer in a real browser: search, open a product, see its similar and complementary lists."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def test_search_open_product_and_see_both_lists(app_server, page):
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.goto(app_server)  # through the router (app.py), as a user arrives
    page.get_by_role("heading", name="Store overview").wait_for(timeout=60_000)
    page.get_by_role("link", name="Product explorer").click()
    page.get_by_role("heading", name="Product explorer").wait_for(timeout=60_000)
    box = page.get_by_role("textbox", name="Search products", exact=True)
    box.fill("kitchen mixer")
    box.press("Enter")
    page.get_by_role("heading", name="mixer").first.wait_for(timeout=30_000)
    # open the second search result
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Open a product").click()
    option = page.get_by_role("option").nth(1)
    chosen = option.inner_text().split(" · ")[-1]
    option.click()
    page.get_by_role("heading", name=chosen).wait_for(timeout=30_000)
    page.get_by_role("heading", name="Similar products").wait_for()
    page.get_by_role("heading", name="Complementary products").wait_for()
    page.get_by_text("Co-view substitutes").wait_for()
    page.get_by_text("Bought together").first.wait_for()
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=30_000)
    assert page.locator('[data-testid="stDataFrame"]').count() >= 2
    assert page.locator('[data-testid="stException"]').count() == 0
    assert outside == []
