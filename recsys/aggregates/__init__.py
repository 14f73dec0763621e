"""The aggregates stage: the EDA cubes under ``<root>/aggregates/`` (funnel, temporal, catalog, prices, sessions,
users, retention, product sales, KPIs).

``build`` (``stage.build_aggregates_stage``) writes them; ``load`` (``query.open_aggregates``) opens them as one
in-memory DuckDB connection, which the page queries take: ``funnel``, ``temporal``, ``catalog``, ``users``,
``customers``, ``retention`` (figures in ``charts`` and ``overview``; URL filters in ``filters``).
"""
from recsys.aggregates.query import EdaFilters, open_aggregates as load
from recsys.aggregates.stage import build_aggregates_stage as build, store_kpis

__all__ = ["EdaFilters", "build", "load", "store_kpis"]
