"""Serving: the recommender service over the model and index stages (``service``), and the REST API (``api``, which
assembles the ``routes`` over the services ``loaders`` loads, with the models of ``schemas``).

``load_recommender_service(root)`` is what the pages, the CLI and the API call; ``recommend_products_for_user`` is
the one-call form. The API is imported on its own (``recsys.serving.api``): it needs FastAPI.
"""
from recsys import lazy_exports

__all__ = ["RecommenderService", "load_recommender_service", "recommend_products_for_user"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "RecommenderService": "recsys.serving.service:RecommenderService",
    "load_recommender_service": "recsys.serving.service:load_recommender_service",
    "recommend_products_for_user": "recsys.serving.service:recommend_products_for_user",
})
