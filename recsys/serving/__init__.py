"""Serving: the recommender service over the model and index stages (``service``), and the REST API (``api``, which
assembles the ``routes`` over the services ``loaders`` loads, with the models of ``schemas``).

``load_recommender_service(root)`` is what the pages, the CLI and the API call; ``recommend_products_for_user`` is
the one-call form. The API is imported on its own (``recsys.serving.api``): it needs FastAPI.
"""
from recsys.serving.service import RecommenderService, load_recommender_service, recommend_products_for_user

__all__ = ["RecommenderService", "load_recommender_service", "recommend_products_for_user"]
