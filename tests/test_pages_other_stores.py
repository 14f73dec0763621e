"""Every page on a store with purchases only and no categories (UCI Online Retail): a message, never a crash."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.test_adapters import uci_artifacts  # noqa: F401  (fixture)

PAGES = ["pages/overview.py", "pages/funnel.py", "pages/temporal.py", "pages/brands_categories.py",
         "pages/users_sessions.py", "pages/affinity.py", "pages/product_explorer.py", "pages/recommender.py",
         "pages/evaluation.py"]


@pytest.mark.parametrize("page", PAGES)
def test_page_copes_with_a_purchases_only_store(page, uci_artifacts, monkeypatch):  # noqa: F811
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(uci_artifacts))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "went wrong" in e.value]
