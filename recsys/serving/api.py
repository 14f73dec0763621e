"""The REST API (FastAPI): recommendations, similar and complementary products, text search, health.

Artifacts are loaded once at start-up (lifespan) by the same library classes the app uses. A stage that is not
built or is damaged costs only the endpoints that read it: they answer 503 with what to rebuild (paths relative
to the artifacts directory; the exception goes to the server log), the others keep serving. Bad input never
reaches the handlers: pydantic validates bodies (strict types), paths and queries (422 with a message per
field); a body that is not JSON is 400; unknown ids are 404. Every error body is the one ``Error`` model. A
last-resort handler logs any unexpected error and answers with a JSON 500 instead of a traceback.

Run: ``python -m recsys serve --host 127.0.0.1 --port 8000 [--artifacts DIR]``; docs at ``/docs``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsys.artifacts import (BUILD_COMMAND, ArtifactError, DamagedStage, StageNotBuilt, artifacts_root,
                              read_manifest, recover_interrupted_builds, stage_problem)

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # ids are int64 in the column contract
MAX_ITEMS = 100
ProductId = Annotated[int, Path(ge=0, le=MAX_ID, description="a product_id of the store (int64)")]
UserId = Annotated[int, Path(ge=0, le=MAX_ID, description="a user_id of the store (int64)")]
Count = Annotated[int, Query(ge=1, le=MAX_ITEMS, description="how many items to return")]
Weight = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False,
                                description="0 = pure relevance, 1 = spread across categories")]
SERVED_STAGES = ("events", "rules", "model", "index", "products")  # what /health reports on
RECOMMENDER_STAGES = ("model", "index")  # the ranker lives in the model stage; product names are optional
PRODUCT_STAGES = ("products",)  # the model's embeddings are optional there (feature neighbours without them)
RECOMMENDER_ENDPOINTS = "recommendations (/recommend, /users/{user_id}/recommendations)"
PRODUCT_ENDPOINTS = ("product lookups (/products/{product_id}/similar, /products/{product_id}/complements, "
                     "/search)")
BLANK_QUERY = "the query is blank; type a few words"
EXACT_FLOAT = 2**53  # below it every whole number has an exact float spelling


def _whole_number(v: Any) -> Any:
    """A JSON number without a fraction is an integer (JSON Schema's ``integer`` admits ``5.0``); beyond 2**53
    a float no longer tells which integer was written, so it is refused rather than taken for a neighbour."""
    if isinstance(v, float) and v.is_integer():
        if abs(v) >= EXACT_FLOAT:
            raise ValueError("a whole number this large must be written without a decimal point or exponent")
        return int(v)
    return v  # bool, str, a fraction: the strict int check refuses them


JsonInt = Annotated[int, BeforeValidator(_whole_number)]


def _not_blank(q: str) -> str:
    if not q.strip():
        raise ValueError(BLANK_QUERY)
    return q


SearchQuery = Annotated[str, Query(min_length=1, max_length=200,
                                   description="words of a product's name, category or brand",
                                   json_schema_extra={"pattern": r"\S"}), AfterValidator(_not_blank)]


class FieldError(BaseModel):
    field: str = Field(description="where: body.<name>, query.<name>, path.<name>, or body for the whole body")
    message: str


class Error(BaseModel):
    """The body of every error answer (400, 404, 422, 500, 503)."""
    detail: str = Field(description="what went wrong and what to do about it")
    errors: list[FieldError] = Field(description="one entry per invalid field (400, 422); empty otherwise")


ERROR_TEXTS = {400: "the body is not JSON", 422: "invalid request: one `errors` entry per invalid field",
               500: "unexpected error (logged on the server)"}


def error_responses(texts: dict[int, str] | None = None, *, body: bool = False,
                    params: bool = True) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route: the ``Error`` model for every error it can answer (``texts``: 404, 503)."""
    codes = ({400: ERROR_TEXTS[400]} if body else {}) | ({422: ERROR_TEXTS[422]} if params else {})
    codes |= (texts or {}) | {500: ERROR_TEXTS[500]}
    return {c: {"model": Error, "description": codes[c]} for c in sorted(codes)}


class RecommendRequest(BaseModel):
    """The original Flask project's payload, plus the diversity weight. Types are strict: `true` and `"5"` are
    not users (`5.0` is 5, as JSON Schema's `integer` says)."""
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"user_id": 512475445, "num_recommendations": 5, "diversity_weight": 0.3}]})
    user_id: JsonInt = Field(ge=0, le=MAX_ID, description="a user_id of the store (int64)")
    num_recommendations: JsonInt = Field(5, ge=1, le=MAX_ITEMS, description="how many products to return")
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
    status: Literal["ok", "degraded"] = Field(description="degraded when a stage is missing or damaged")
    artifacts: str = Field(description="name of the artifacts directory (its path is in the server log)")
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


def build_command(root: FilePath) -> str:
    """The command that rebuilds ``root``, shown to clients: a relative directory as given, an absolute one by its
    name only (the full path is in the server log)."""
    shown = f".../{root.name}" if root.is_absolute() else str(root)
    return f"{BUILD_COMMAND} --artifacts {shown}"


def stage_phrase(problem: ArtifactError) -> str:
    """What is wrong with one stage, naming the file relative to the artifacts directory."""
    if isinstance(problem, DamagedStage):
        return f"the {problem.stage} stage is damaged ({problem.problem})"
    if isinstance(problem, StageNotBuilt):
        return f"the {problem.stage} stage is not built"
    return "an artifact is unreadable"  # pragma: no cover - stage_problem returns only the two above


def unavailable(root: FilePath, what: str, stages: tuple[str, ...], exc: BaseException) -> str:
    """Why ``what`` cannot be served after loading ``stages`` raised ``exc``: every one of those stages that is
    not built or fails its size and hash check, and the command to run. No path, no exception text."""
    problems = [p for p in (stage_problem(root, s) for s in stages) if p is not None]
    if isinstance(exc, (StageNotBuilt, DamagedStage)) and exc.stage not in {p.stage for p in problems}:
        problems.insert(0, exc)  # a file checked on load only (a subset of a stage)
    if problems:
        return f"{what} are unavailable: {' and '.join(map(stage_phrase, problems))}; run `{build_command(root)}`"
    names = f"{' and '.join(stages)} stage{'s' if len(stages) > 1 else ''}"
    return (f"{what} are unavailable: the {names} could not be loaded although the files are as built (the server "
            f"log says why); run `{build_command(root)} --force`")


def load_part(root: FilePath, what: str, stages: tuple[str, ...], load: Callable[[], Any]) -> tuple[Any | None, str]:
    """``load()``, or (None, why) when it fails (see ``unavailable``). The exception and its traceback go to the
    server log, never to a client."""
    try:
        return load(), ""
    except Exception as exc:  # a damaged file must cost its endpoints, not the whole server
        log.warning("%s unavailable (artifacts %s): %s: %s", what, root, type(exc).__name__, exc,
                    exc_info=not isinstance(exc, ArtifactError) or exc.__cause__ is not None)
        return None, unavailable(root, what, stages, exc)


def load_products(root: FilePath) -> tuple[Any | None, str]:
    """The products service (similar, complements, search), or (None, why)."""
    from recsys.products.service import ProductService
    return load_part(root, PRODUCT_ENDPOINTS, PRODUCT_STAGES, lambda: ProductService(root))


def load_recommender(root: FilePath) -> tuple[Any | None, str]:
    """The two-tower recommender service, or (None, why it is unavailable)."""
    try:
        from recsys.serving.service import load_recommender_service
    except ImportError as exc:
        log.warning("the two-tower recommender cannot be imported: %s", exc)
        return None, f"{RECOMMENDER_ENDPOINTS} are unavailable: the two-tower recommender is not installed"
    return load_part(root, RECOMMENDER_ENDPOINTS, RECOMMENDER_STAGES, lambda: load_recommender_service(root))


def stage_report(root: FilePath, whys: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Build time of each served stage (None when not built), and the problems: ``whys`` (what the endpoints
    lack) plus every other damaged stage, such as one the endpoints loaded without (sizes only: cheap)."""
    stages, problems = {}, [w for w in whys if w]
    for stage in SERVED_STAGES:
        try:
            m = read_manifest(root, stage)
        except ArtifactError:
            m = None
        stages[stage] = m.get("built_at") if m else None
        problem = stage_problem(root, stage, hashes=False)
        if isinstance(problem, DamagedStage) and not any(stage_phrase(problem) in p for p in problems):
            problems.append(f"{stage_phrase(problem)}; run `{build_command(root)}`")
    return stages, problems


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
        with contextlib.suppress(OSError):  # a killed build's half set: put the previous complete set back first
            recover_interrupted_builds(root)
        st = app.state
        st.products, st.products_why = load_products(root)
        st.recommender, st.recommender_why = load_recommender(root)
        st.stages, st.problems = stage_report(root, [st.products_why, st.recommender_why])
        log.info("API loaded artifacts from %s in %.2f s; problems: %s", root, time.perf_counter() - t0,
                 st.problems or "none")
        yield

    # FastAPIOffline serves the Swagger UI / ReDoc assets from the package: /docs works without a CDN
    app = FastAPIOffline(title="Store recommendations API", version="1.0", lifespan=lifespan,
                         description="Recommendations, similar and complementary products and text search over the "
                                     "store's built artifacts. Every error is JSON: the `Error` model, a `detail` "
                                     "message and one `errors` entry per invalid field.")

    def error(status: int, detail: str, errors: list[dict[str, str]] | None = None,
              headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail, "errors": errors or []}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        bad_json = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            why = f"{bad_json.get('ctx', {}).get('error', 'JSON decode error')} at character {bad_json['loc'][-1]}"
            return error(400, f"invalid request: the body is not JSON ({why})", [{"field": "body", "message": why}])
        errors = [{"field": ".".join(str(x) for x in e.get("loc", ())),
                   "message": str(e.get("msg", "invalid")).removeprefix("Value error, ")} for e in exc.errors()]
        text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error(422, f"invalid request: {text}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's own, for a body it cannot decode at all (bytes that are not UTF-8)
            why = "it cannot be decoded as JSON text"
            return error(400, f"invalid request: the body is not JSON ({why})", [{"field": "body", "message": why}],
                         exc.headers)
        return error(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    def products(request: Request):
        svc = request.app.state.products
        if svc is None:
            raise HTTPException(503, request.app.state.products_why)
        return svc

    def recommender(request: Request):
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

    rec_texts = {404: "unknown user", 503: "the model or index stage is not built or damaged"}
    product_texts = {404: "unknown product", 503: "the products stage is not built or damaged"}

    @app.post("/recommend", response_model=Recommendations, tags=["recommendations"],
              responses=error_responses(rec_texts, body=True))
    async def post_recommend(body: RecommendRequest, request: Request) -> JSONResponse:
        """Top products for a user from the two-tower model with category-aware diversity re-ranking."""
        return recommend(request, body.user_id, body.num_recommendations, body.diversity_weight)

    @app.get("/users/{user_id}/recommendations", response_model=Recommendations, tags=["recommendations"],
             responses=error_responses(rec_texts))
    async def get_recommend(user_id: UserId, request: Request, num_recommendations: Count = 5,
                            diversity_weight: Weight = 0.3) -> JSONResponse:
        """The same as POST /recommend with query parameters."""
        return recommend(request, user_id, num_recommendations, diversity_weight)

    @app.get("/products/{product_id}/similar", response_model=Similar, tags=["products"],
             responses=error_responses(product_texts))
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
             responses=error_responses(product_texts))
    async def get_complements(product_id: ProductId, request: Request, k: Count = 10) -> JSONResponse:
        """Bought together (lift, minimum support) plus the best item of each top complementary category."""
        svc = products(request)
        try:
            return _json({"product_id": product_id, "items": _products(svc.complements(product_id, k))})
        except KeyError as exc:
            raise HTTPException(404, exc.args[0]) from exc

    @app.get("/search", response_model=SearchResults, tags=["products"],
             responses=error_responses({503: product_texts[503]}))
    async def get_search(request: Request, q: SearchQuery, k: Count = 10,
                         method: Literal["bm25", "tower"] | None = None) -> JSONResponse:
        """Products ranked for a text query (empty list when no word is known to the catalog)."""
        svc = products(request)
        df = svc.search(q, k, method)
        return _json({"query": q, "method": method or svc.search_index.default, "items": _products(df)})

    @app.get("/health", response_model=Health, tags=["service"], responses=error_responses(params=False))
    async def health(request: Request) -> Health:
        """Which artifacts are loaded, their build times, and what is missing or damaged (and how to rebuild it)."""
        st = request.app.state
        ok = st.products is not None and st.recommender is not None and not st.problems
        return Health(status="ok" if ok else "degraded", artifacts=root.name, products=st.products is not None,
                      recommender=st.recommender is not None, problems=list(st.problems), stages=st.stages)

    app.openapi = _exact_integer_bounds(app.openapi, [RecommendRequest])
    return app


def _exact_integer_bounds(openapi: Callable[[], dict[str, Any]], models: list[type[BaseModel]]
                          ) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI model types every ``minimum``/``maximum`` as a float, which publishes ``le=2**63-1`` as
    9.223372036854776e18 (that is 2**63); put back the request models' schemas exactly as pydantic writes them."""
    def patched() -> dict[str, Any]:
        spec = openapi()
        for model in models:
            spec["components"]["schemas"][model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}")
        return spec
    return patched


def serve(root: str | os.PathLike | None = None, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1, log_level: str = "warning") -> None:
    """Run the API with uvicorn (blocks until stopped)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before faiss/torch load OpenMP: see single_threaded_math
    import uvicorn
    if workers > 1:
        os.environ["RECSYS_ARTIFACTS"] = str(artifacts_root(root))
        uvicorn.run("recsys.serving.api:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)
    else:
        uvicorn.run(create_app(root), host=host, port=port, log_level=log_level)


def app_from_env() -> FastAPI:
    """App factory for multi-worker uvicorn: artifacts from ``$RECSYS_ARTIFACTS``."""
    return create_app(None)
