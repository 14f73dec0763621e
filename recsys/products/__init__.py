"""The products stage: product cards, similar and complementary products, and text search, under
``<root>/products/``.

``build`` (``stage.build_products_stage``) writes them (the tables" SQL is ``tables``); ``load``
(``service.ProductService``) reads them back as the service the product explorer and the API call; ``search`` is
the BM25 + query-tower search index.
"""
from recsys import lazy_exports

__all__ = ["ProductService", "build", "load"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "ProductService": "recsys.products.service:ProductService",
    "build": "recsys.products.stage:build_products_stage",
    "load": "recsys.products.service:ProductService",
})
