"""The aggregates stage: the EDA cubes under ``<root>/aggregates/`` (funnel, temporal, catalog, prices, sessions,
users, retention, product sales, KPIs).

``build`` (``stage.build_aggregates_stage``) writes them; ``load`` (``query.open_aggregates``) opens them as one
in-memory DuckDB connection, which the page queries take: ``funnel``, ``temporal``, ``catalog``, ``users``,
``customers``, ``retention`` (figures in ``charts`` and ``overview``; URL filters in ``filters``).
"""
from recsys import lazy_exports

__all__ = ["EdaFilters", "build", "load", "store_kpis"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "EdaFilters": "recsys.aggregates.query:EdaFilters",
    "build": "recsys.aggregates.stage:build_aggregates_stage",
    "load": "recsys.aggregates.query:open_aggregates",
    "store_kpis": "recsys.aggregates.stage:store_kpis",
})
