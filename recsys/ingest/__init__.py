"""The events stage: store files (REES46 CSV, RetailRocket, UCI Online Retail) or the demo store -> the cleaned
canonical event table under ``<root>/events/``.

``build`` (``stage.build_events``) writes it; ``load`` (``interactions.load_interactions``) reads it back as integer-coded
arrays, ``load_quality`` reads the cleaning report. Modules: ``reader`` (REES46 CSV -> Parquet), ``cleaning`` (the
rules every row passes), ``spark`` (the same on Spark); other formats: ``formats`` (detection from the header, the
report), ``retailrocket``, ``uci`` and ``adapters`` (their events stage, product names); the deterministic synthetic
stores: ``demo`` (with ``demo_catalog``, ``demo_world``, ``demo_sessions``) and ``demo_wholesale`` (with
``wholesale_log``); ``interactions`` (the arrays every model trains on).
"""
from recsys import lazy_exports

__all__ = ["Interactions", "build", "load", "load_quality"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "Interactions": "recsys.ingest.interactions:Interactions",
    "build": "recsys.ingest.stage:build_events",
    "load": "recsys.ingest.interactions:load_interactions",
    "load_quality": "recsys.ingest.stage:load_quality",
})
