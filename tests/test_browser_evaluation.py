"""The Evaluation page in a real browser: the CI bar chart and the accuracy-diversity curve draw, offline."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def test_evaluation_page_draws_its_charts_offline(app_server, page, demo_artifacts):
    from recsys.evaluation import load_evaluation
    has_curve = not load_evaluation(demo_artifacts).curve.empty
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith("data:") else None)
    page.goto(f"{app_server}/evaluation")
    page.get_by_role("heading", name="Offline evaluation").wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == (2 if has_curve else 1)
    # the bars carry their confidence intervals as drawn error bars
    assert page.locator(".js-plotly-plot .errorbar").count() > 0
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert outside == []
