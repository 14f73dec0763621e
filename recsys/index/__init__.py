"""The index stage: a FAISS index over the model stage's item vectors, under ``<root>/index/``.

``build`` (``stage.build_index_stage``) writes it (exact inner product on small catalogs, HNSW on large ones);
``load`` (``stage.load_index``) reads it back as a ``faiss.Index``.
"""
from recsys.index.stage import build_index_stage as build, load_index as load

__all__ = ["build", "load"]
