"""The REST API (FastAPI): recommendations, similar and complementary products, text search, health.

Artifacts are loaded once at start-up (lifespan) by the same library classes the app uses. Bad input never
reaches the handlers: pydantic validates bodies, paths and queries (422 with a message per field); unknown
ids are 404; a stage that is not built is 503 with the command that builds it. A last-resort handler logs any
unexpected error and answers with a JSON message instead of a traceback.

Run: ``python -m recsys serve --host 127.0.0.1 --port 8000 [--artifacts DIR]``; docs at ``/docs``.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field

from recsys.artifacts import ArtifactError, artifacts_root, read_manifest

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # ids are int64 in the column contract
MAX_ITEMS = 100
ProductId = Annotated[int, Path(ge=0, le=MAX_ID, description="a product_id of the store (int64)")]
UserId = Annotated[int, Path(ge=0, le=MAX_ID, description="a user_id of the store (int64)")]
Count = Annotated[int, Query(ge=1, le=MAX_ITEMS, description="how many items to return")]
Weight = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False,
                                description="0 = pure relevance, 1 = spread across categories")]


class RecommendRequest(BaseModel):
    """The original Flask project's payload, plus the diversity weight."""
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"user_id": 512475445, "num_recommendations": 5, "diversity_weight": 0.3}]})
    user_id: int = Field(ge=0, le=MAX_ID, description="a user_id of the store (int64)")
    num_recommendations: int = Field(5, ge=1, le=MAX_ITEMS, description="how many products to return")
    diversity_weight: float = Field(0.3, ge=0.0, le=1.0, allow_inf_nan=False,
                                    description="0 = pure relevance, 1 = spread across categories")


class Product(BaseModel):
    """One listed product with why it is listed."""
    product_id: int
    brand: str
    category: str
    price: float
    score: float
    reason: str = ""
    source: str = ""


class Recommendations(BaseModel):
    user_id: int
    diversity_weight: float
    recommendations: list[Product]


class ProductList(BaseModel):
    source: str = Field(description="where the list comes from (embedding, features, co-view, co-purchase...)")
    items: list[Product]


class Similar(BaseModel):
    product_id: int
    neighbours: ProductList = Field(description="nearest items in the two-tower space, else by features")
    co_view: ProductList = Field(description="co-viewed in sessions where at most one of the two was bought")


class Complements(BaseModel):
    product_id: int
    items: list[Product]


class SearchResults(BaseModel):
    query: str
    method: str
    items: list[Product]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    artifacts: str
    products: bool
    recommender: bool
    problems: list[str]
    stages: dict[str, str | None]


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


def load_recommender(root: str | os.PathLike | None) -> tuple[Any | None, str | None]:
    """The two-tower recommender service, or (None, why it is unavailable)."""
    try:
        from recsys.recommend import load_recommender_service
    except ImportError as exc:
        return None, f"the two-tower recommender is not part of this installation ({exc})"
    try:
        return load_recommender_service(root), None
    except (ArtifactError, FileNotFoundError, OSError, ValueError, KeyError) as exc:
        return None, f"model not built: {exc}"


def single_threaded_math() -> None:
    """One thread per query in FAISS: a server gets its parallelism from concurrent requests, and OpenMP
    threads spinning on a shared 2-core machine made one flat search 30x slower (53 ms vs 1.2 ms, measured)."""
    try:
        import faiss
        faiss.omp_set_num_threads(1)
    except ImportError:  # pragma: no cover - faiss is a runtime dependency
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)  # BLAS (numpy matmuls of one user/query) likewise
    except ImportError:  # pragma: no cover - comes with scikit-learn
        pass


def create_app(root: str | os.PathLike | None = None) -> FastAPI:
    """The API over the artifacts in ``root`` (default ``$RECSYS_ARTIFACTS`` or ``artifacts/``)."""
    root = artifacts_root(root)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        t0 = time.perf_counter()
        single_threaded_math()
        app.state.problems = []
        try:
            from recsys.products import ProductService
            app.state.products = ProductService(root)
        except (ArtifactError, OSError, ValueError) as exc:
            app.state.products = None
            app.state.problems.append(f"products stage unavailable: {exc}")
        app.state.recommender, why = load_recommender(root)
        if why:
            app.state.problems.append(why)
        app.state.stages = {}
        for stage in ("events", "rules", "model", "index", "products"):
            try:
                m = read_manifest(root, stage)
            except ArtifactError:
                m = None
            app.state.stages[stage] = m.get("built_at") if m else None
        log.info("API loaded artifacts from %s in %.2f s", root, time.perf_counter() - t0)
        yield

    # FastAPIOffline serves the Swagger UI / ReDoc assets from the package: /docs works without a CDN
    app = FastAPIOffline(title="Store recommendations API", version="1.0", lifespan=lifespan,
                  description="Recommendations, similar and complementary products and text search over the "
                              "store's built artifacts. Every error is JSON with a `detail` message.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(x) for x in e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
                  for e in exc.errors()]
        text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content={"detail": f"invalid request: {text}", "errors": errors})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error ({type(exc).__name__}); "
                                                                "the server log has the details"})

    def products(request: Request):
        svc = request.app.state.products
        if svc is None:
            raise HTTPException(503, f"products stage not built in {root}: run `python -m recsys build "
                                     f"--artifacts {root}`")
        return svc

    def recommender(request: Request):
        svc = request.app.state.recommender
        if svc is None:
            why = next((p for p in request.app.state.problems if "recommender" in p or "model" in p), "")
            raise HTTPException(503, f"model not built ({why}); run `python -m recsys build --artifacts {root}`")
        return svc

    def recommend(request: Request, user_id: int, n: int, weight: float) -> JSONResponse:
        svc = recommender(request)
        try:
            df = svc.recommend_for_user(user_id, top_n=n, diversity_weight=weight)
        except KeyError as exc:
            raise HTTPException(404, f"unknown user_id {user_id}: no such user in this store") from exc
        return _json({"user_id": user_id, "diversity_weight": weight, "recommendations": _products(df, svc.source)})

    @app.post("/recommend", response_model=Recommendations, tags=["recommendations"],
              responses={404: {"description": "unknown user"}, 503: {"description": "model not built"}})
    async def post_recommend(body: RecommendRequest, request: Request) -> JSONResponse:
        """Top products for a user from the two-tower model with category-aware diversity re-ranking."""
        return recommend(request, body.user_id, body.num_recommendations, body.diversity_weight)

    @app.get("/users/{user_id}/recommendations", response_model=Recommendations, tags=["recommendations"],
             responses={404: {"description": "unknown user"}, 503: {"description": "model not built"}})
    async def get_recommend(user_id: UserId, request: Request, num_recommendations: Count = 5,
                            diversity_weight: Weight = 0.3) -> JSONResponse:
        """The same as POST /recommend with query parameters."""
        return recommend(request, user_id, num_recommendations, diversity_weight)

    @app.get("/products/{product_id}/similar", response_model=Similar, tags=["products"],
             responses={404: {"description": "unknown product"}})
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

    @app.get("/products/{product_id}/complements", response_model=Complements, tags=["products"],
             responses={404: {"description": "unknown product"}})
    async def get_complements(product_id: ProductId, request: Request, k: Count = 10) -> JSONResponse:
        """Bought together (lift, minimum support) plus the best item of each top complementary category."""
        svc = products(request)
        try:
            return _json({"product_id": product_id, "items": _products(svc.complements(product_id, k))})
        except KeyError as exc:
            raise HTTPException(404, exc.args[0]) from exc

    @app.get("/search", response_model=SearchResults, tags=["products"])
    async def get_search(request: Request,
                   q: Annotated[str, Query(min_length=1, max_length=200, description="e.g. 'cheap headphones'")],
                   k: Count = 10, method: Literal["bm25", "tower"] | None = None) -> JSONResponse:
        """Products ranked for a text query (empty list when no word is known to the catalog)."""
        svc = products(request)
        if not q.strip():
            raise HTTPException(422, "invalid request: query.q: the query is blank; type a few words")
        df = svc.search(q, k, method)
        return _json({"query": q, "method": method or svc.search_index.default, "items": _products(df)})

    @app.get("/health", response_model=Health, tags=["service"])
    async def health(request: Request) -> Health:
        """Which artifacts are loaded and what is missing."""
        st = request.app.state
        ok = st.products is not None and st.recommender is not None
        return Health(status="ok" if ok else "degraded", artifacts=str(root), products=st.products is not None,
                      recommender=st.recommender is not None, problems=list(st.problems), stages=st.stages)

    return app


def serve(root: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1, log_level: str = "warning") -> None:
    """Run the API with uvicorn (blocks until stopped)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before faiss/torch load OpenMP: see single_threaded_math
    import uvicorn
    if workers > 1:
        os.environ["RECSYS_ARTIFACTS"] = str(artifacts_root(root))
        uvicorn.run("recsys.api:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)
    else:
        uvicorn.run(create_app(root), host=host, port=port, log_level=log_level)


def app_from_env() -> FastAPI:
    """App factory for multi-worker uvicorn: artifacts from ``$RECSYS_ARTIFACTS``."""
    return create_app(None)
