"""The library's readers close every DuckDB connection they open (an open one holds memory and file handles for
as long as the caller lives: the app and the API call these on every request)."""
from __future__ import annotations

import duckdb
import pytest

from recsys import artifacts
from recsys.aggregates import stage as aggregates
from recsys.ingest import interactions
from recsys.ingest.stage import build_events
from recsys.model import profiles
from tests.stores import write_uci_csv


def test_readers_close_their_connections(tmp_path, monkeypatch):
    root = tmp_path / "art"
    build_events(root, [write_uci_csv(tmp_path / "retail.csv")])
    opened: list[duckdb.DuckDBPyConnection] = []

    def spy(*args, **kwargs):
        con = artifacts.connect(*args, **kwargs)
        opened.append(con)
        return con

    for module in (interactions, aggregates, profiles):
        monkeypatch.setattr(module, "connect", spy)
    inter = interactions.load_interactions(root)
    assert aggregates.store_kpis(root)["events"] == len(inter.ts)
    assert set(profiles.telling_users(root)) and len(profiles.popular_products(root)) > 0
    user = int(inter.user_ids[0])
    assert profiles.user_profile(root, user)["user_id"] == user
    with pytest.raises(KeyError):
        profiles.user_profile(root, 999_999_999)  # closed on the error path too
    assert len(opened) >= 6
    for con in opened:
        with pytest.raises(duckdb.ConnectionException):
            con.execute("SELECT 1")


def test_connect_closes_its_connection_when_a_setting_fails(tmp_path, monkeypatch):
    root = tmp_path / "art"
    build_events(root, [write_uci_csv(tmp_path / "retail.csv")])
    made: list[duckdb.DuckDBPyConnection] = []
    real = duckdb.connect

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(artifacts.duckdb, "connect", spy)
    with pytest.raises(duckdb.Error):
        artifacts.connect(root, memory_limit="not a size")
    assert len(made) == 1
    with pytest.raises(duckdb.ConnectionException):
        made[0].execute("SELECT 1")
    with artifacts.connect(root, threads=1) as con:  # and a good one works, and closes with its block
        assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] > 0
    with pytest.raises(duckdb.ConnectionException):
        con.execute("SELECT 1")
