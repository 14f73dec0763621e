"""Recommender explorer in a real browser: moving the diversity slider re-ranks the list."""
from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def _listed_products(page) -> list[str]:
    """Product ids of the served list: the first table of recommendations (the two-tower's own list is second).
    The grid renders only the columns in view, so a row's cells are counted from the rendered headers."""
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stDataFrame] [role=columnheader]')]"
                           ".some(c => c.innerText.trim() === 'reason')", timeout=30_000)
    for grid in page.locator('[data-testid="stDataFrame"]').all():
        headers = [h.strip() for h in grid.locator('[role="columnheader"]').all_inner_texts()]
        if headers[:3] == ["rank", "product_id", "reason"]:
            return grid.locator('[role="gridcell"]').all_inner_texts()[1::len(headers)]
    return []


def _settled(page) -> None:
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=30_000)


def test_slider_moves_and_the_list_changes(app_server, page):
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.goto(f"{app_server}/recommender")
    page.get_by_role("heading", name="Recommender explorer").wait_for(timeout=60_000)
    page.get_by_role("heading", name="Recommendations at diversity weight 0.30").wait_for(timeout=60_000)
    _settled(page)
    before = _listed_products(page)
    assert len(before) == 10

    thumb = page.get_by_role("slider", name="Diversity weight")
    thumb.focus()
    thumb.press("End")  # weight 1.0
    page.get_by_role("heading", name="Recommendations at diversity weight 1.00").wait_for(timeout=30_000)
    _settled(page)
    after, deadline = _listed_products(page), time.monotonic() + 30
    while after == before and time.monotonic() < deadline:  # the grid repaints a moment after the rerun
        page.wait_for_timeout(250)
        after = _listed_products(page)
    assert len(after) == 10 and after != before
    assert page.locator('.js-plotly-plot').count() >= 3  # timeline + two category-mix charts
    assert page.locator('[data-testid="stException"]').count() == 0
    assert outside == []
