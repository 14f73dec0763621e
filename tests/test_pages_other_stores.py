"""Every page on a store with purchases only and no categories (UCI Online Retail): a message, never a crash."""
from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

# every page the router knows (pages added later are covered without editing this list)
PAGES = re.findall(r'st\.Page\("(pages/[a-z_]+\.py)"', (REPO / "app.py").read_text())


def test_every_page_is_listed():
    assert len(PAGES) >= 12 and "pages/customers.py" in PAGES and "pages/data.py" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page_copes_with_a_purchases_only_store(page, uci_artifacts, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(uci_artifacts))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "went wrong" in e.value]
