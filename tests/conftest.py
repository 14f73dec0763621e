"""Shared fixtures: a small demo store built once per test session, the real REES46 head when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAD_CSV = REPO.parent / "shared" / "data" / "rees46-2019-Oct-head.csv"
SMALL_DEMO_EVENTS = 40_000


@pytest.fixture(scope="session")
def head_csv() -> Path:
    """The real REES46 head (17,435 rows, truncated last line); skips when ../shared is absent."""
    if not HEAD_CSV.exists():
        pytest.skip("../shared/data/rees46-2019-Oct-head.csv is not present")
    return HEAD_CSV


@pytest.fixture(scope="session")
def demo_artifacts(tmp_path_factory) -> Path:
    """A full build (every stage) of a small demo store, shared by integration tests and AppTests."""
    from recsys.build import build
    root = tmp_path_factory.mktemp("demo-artifacts")
    build(root, demo_events=SMALL_DEMO_EVENTS, seed=7)
    return root


@pytest.fixture(scope="session")
def head_artifacts(tmp_path_factory, head_csv) -> Path:
    """A full build over the real head."""
    from recsys.build import build
    root = tmp_path_factory.mktemp("head-artifacts")
    build(root, [head_csv])
    return root


@pytest.fixture()
def app_env(demo_artifacts, monkeypatch):
    """Point the app at the small demo build; returns a factory for AppTest on app.py."""
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(demo_artifacts))

    def make(timeout: float = 60) -> "AppTest":
        return AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)

    return make
