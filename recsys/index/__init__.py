"""The index stage: a FAISS index over the model stage"s item vectors, under ``<root>/index/``.

``build`` (``stage.build_index_stage``) writes it (exact inner product on small catalogs, HNSW on large ones);
``load`` (``stage.load_index``) reads it back as a ``faiss.Index``.
"""
from recsys import lazy_exports

__all__ = ["build", "load"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "build": "recsys.index.stage:build_index_stage",
    "load": "recsys.index.stage:load_index",
})
