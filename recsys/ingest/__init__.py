"""The events stage: store files (REES46 CSV, RetailRocket, UCI Online Retail) or the demo store -> the cleaned
canonical event table under ``<root>/events/``.

``build`` (``stage.build_events``) writes it; ``load`` (``interactions.load_interactions``) reads it back as integer-coded
arrays, ``load_quality`` reads the cleaning report. Modules: ``reader`` (REES46 CSV -> Parquet), ``cleaning`` (the
rules every row passes), ``spark`` (the same on Spark); other formats: ``formats`` (detection from the header, the
report), ``retailrocket``, ``uci`` and ``adapters`` (their events stage, product names); the deterministic synthetic
stores: ``demo`` (with ``demo_catalog``, ``demo_world``, ``demo_sessions``) and ``demo_wholesale`` (with
``wholesale_log``); ``interactions`` (the arrays every model trains on).
"""
from recsys.ingest.interactions import Interactions, load_interactions as load
from recsys.ingest.stage import build_events as build, load_quality

__all__ = ["Interactions", "build", "load", "load_quality"]
