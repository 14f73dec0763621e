"""The REST API's routes and its error answers: recommendations, similar and complementary products, text
search, health, and the handlers that turn every failure into the one ``Error`` body.

The routes read the services that ``recsys.serving.api`` loaded into ``app.state`` at start-up (``loaders``):
a service that could not be loaded is None beside the reason, which its endpoints answer with a 503. The request
and response models are in ``recsys.serving.schemas``.
"""
from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.serving.schemas import (Complements, Count, Health, ProductId, RecommendRequest, Recommendations,
                                    SearchQuery, SearchResults, Similar, UserId, Weight, error_responses)

log = logging.getLogger(__name__)

REC_TEXTS = {404: "unknown user", 503: "the model or index stage is not built or damaged"}
PRODUCT_TEXTS = {404: "unknown product", 503: "the products stage is not built or damaged"}

router = APIRouter()


# ---- error answers ---------------------------------------------------------------------------------------

def error(status: int, detail: str, errors: list[dict[str, str]] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """An ``Error`` body with its status."""
    return JSONResponse(status_code=status, content={"detail": detail, "errors": errors or []}, headers=headers)


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON, else 422 with one entry per invalid field."""
    bad_json = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        why = f"{bad_json.get('ctx', {}).get('error', 'JSON decode error')} at character {bad_json['loc'][-1]}"
        return error(400, f"invalid request: the body is not JSON ({why})", [{"field": "body", "message": why}])
    errors = [{"field": ".".join(str(x) for x in e.get("loc", ())),
               "message": str(e.get("msg", "invalid")).removeprefix("Value error, ")} for e in exc.errors()]
    text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return error(422, f"invalid request: {text}", errors)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Every HTTPException (404, 503, an unknown path, a wrong method) as an ``Error`` body."""
    if exc.status_code == 400:  # FastAPI's own, for a body it cannot decode at all (bytes that are not UTF-8)
        why = "it cannot be decoded as JSON text"
        return error(400, f"invalid request: the body is not JSON ({why})", [{"field": "body", "message": why}],
                     exc.headers)
    return error(exc.status_code, str(exc.detail), headers=exc.headers)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """The last resort: log the traceback, answer a JSON 500 without it."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error(500, f"internal error ({type(exc).__name__}); the server log has the details")


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with the ``Error`` body."""
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


# ---- the services and their answers ----------------------------------------------------------------------

def _products(df: pd.DataFrame, source: str | None = None) -> list[dict[str, Any]]:
    """Rows of a library result frame as plain JSON-able dicts (the ``Product`` schema), NaN-free."""
    if df is None or df.empty:
        return []
    n = len(df)
    reason = df["reason"].astype(str).tolist() if "reason" in df else [""] * n
    src = df["source"].astype(str).tolist() if "source" in df else [source or ""] * n
    price = np.nan_to_num(df["price"].to_numpy(np.float64)).tolist()
    score = np.nan_to_num(df["score"].to_numpy(np.float64)).tolist()
    return [{"product_id": p, "brand": str(b), "category": str(c), "price": pr, "score": sc, "reason": r,
             "source": so}
            for p, b, c, pr, sc, r, so in zip(df["product_id"].to_numpy(np.int64).tolist(), df["brand"].tolist(),
                                              df["category"].tolist(), price, score, reason, src)]


def _json(payload: dict[str, Any]) -> JSONResponse:
    """A response built from plain types: the endpoint's response_model documents it without re-validating."""
    return JSONResponse(payload)


def products(request: Request):
    """The products service, or a 503 saying why it is unavailable."""
    svc = request.app.state.products
    if svc is None:
        raise HTTPException(503, request.app.state.products_why)
    return svc


def recommender(request: Request):
    """The recommender service, or a 503 saying why it is unavailable."""
    svc = request.app.state.recommender
    if svc is None:
        raise HTTPException(503, request.app.state.recommender_why)
    return svc


def recommend(request: Request, user_id: int, n: int, weight: float) -> JSONResponse:
    svc = recommender(request)
    try:
        df = svc.recommend_for_user(user_id, top_n=n, diversity_weight=weight)
    except KeyError as exc:
        raise HTTPException(404, f"unknown user_id {user_id}: no such user in this store") from exc
    return _json({"user_id": user_id, "diversity_weight": weight, "recommendations": _products(df, svc.source)})


# ---- the routes ------------------------------------------------------------------------------------------

@router.post("/recommend", response_model=Recommendations, tags=["recommendations"],
             responses=error_responses(REC_TEXTS, body=True))
async def post_recommend(body: RecommendRequest, request: Request) -> JSONResponse:
    """Top products for a user from the two-tower model with category-aware diversity re-ranking."""
    return recommend(request, body.user_id, body.num_recommendations, body.diversity_weight)


@router.get("/users/{user_id}/recommendations", response_model=Recommendations, tags=["recommendations"],
            responses=error_responses(REC_TEXTS))
async def get_recommend(user_id: UserId, request: Request, num_recommendations: Count = 5,
                        diversity_weight: Weight = 0.3) -> JSONResponse:
    """The same as POST /recommend with query parameters."""
    return recommend(request, user_id, num_recommendations, diversity_weight)


@router.get("/products/{product_id}/similar", response_model=Similar, tags=["products"],
            responses=error_responses(PRODUCT_TEXTS))
async def get_similar(product_id: ProductId, request: Request, k: Count = 10) -> JSONResponse:
    """Substitutes: embedding (or, without a model, feature) neighbours and co-view substitutes."""
    svc = products(request)
    try:
        lists = svc.similar(product_id, k)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from exc
    nb = lists["neighbours"]
    return _json({"product_id": product_id,
                  "neighbours": {"source": str(nb["source"].iat[0]) if len(nb) else "features",
                                 "items": _products(nb)},
                  "co_view": {"source": "co-view", "items": _products(lists["co_view"])}})


@router.get("/products/{product_id}/complements", response_model=Complements, tags=["products"],
            responses=error_responses(PRODUCT_TEXTS))
async def get_complements(product_id: ProductId, request: Request, k: Count = 10) -> JSONResponse:
    """Bought together (lift, minimum support) plus the best item of each top complementary category."""
    svc = products(request)
    try:
        return _json({"product_id": product_id, "items": _products(svc.complements(product_id, k))})
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from exc


@router.get("/search", response_model=SearchResults, tags=["products"],
            responses=error_responses({503: PRODUCT_TEXTS[503]}))
async def get_search(request: Request, q: SearchQuery, k: Count = 10,
                     method: Literal["bm25", "tower"] | None = None) -> JSONResponse:
    """Products ranked for a text query (empty list when no word is known to the catalog)."""
    svc = products(request)
    df = svc.search(q, k, method)
    return _json({"query": q, "method": method or svc.search_index.default, "items": _products(df)})


@router.get("/health", response_model=Health, tags=["service"], responses=error_responses(params=False))
async def health(request: Request) -> Health:
    """Which artifacts are loaded, their build times, and what is missing or damaged (and how to rebuild it)."""
    st = request.app.state
    ok = st.products is not None and st.recommender is not None and not st.problems
    return Health(status="ok" if ok else "degraded", artifacts=st.root.name, products=st.products is not None,
                  recommender=st.recommender is not None, problems=list(st.problems), stages=st.stages)
