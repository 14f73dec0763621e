"""recsys: e-commerce behaviour analytics and recommendations over REES46-format event logs.

The library behind the Streamlit app, the CLI (``python -m recsys``) and the REST API. It never imports
streamlit.
"""

__all__ = ["recommend_products_for_user"]


def __getattr__(name: str):
    """Lazy exports: ``import recsys`` stays cheap (no torch/faiss until a recommendation is asked for)."""
    if name == "recommend_products_for_user":
        from recsys.serving.service import recommend_products_for_user
        return recommend_products_for_user
    raise AttributeError(f"module 'recsys' has no attribute {name!r}")
