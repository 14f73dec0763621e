"""The products stage: product cards, similar and complementary products, and text search, under
``<root>/products/``.

``build`` (``stage.build_products_stage``) writes them (the tables' SQL is ``tables``); ``load``
(``service.ProductService``) reads them back as the service the product explorer and the API call; ``search`` is
the BM25 + query-tower search index.
"""
from recsys.products.service import ProductService
from recsys.products.stage import build_products_stage as build

load = ProductService

__all__ = ["ProductService", "build", "load"]
