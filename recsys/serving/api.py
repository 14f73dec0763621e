"""The REST API (FastAPI): recommendations, similar and complementary products, text search, health.

Artifacts are loaded once at start-up (lifespan) by the same library classes the app uses. A stage that is not
built or is damaged costs only the endpoints that read it: they answer 503 with what to rebuild (paths relative
to the artifacts directory; the exception goes to the server log), the others keep serving. Bad input never
reaches the handlers: pydantic validates bodies (strict types), paths and queries (422 with a message per
field); a body that is not JSON is 400; unknown ids are 404. Every error body is the one ``Error`` model. A
last-resort handler logs any unexpected error and answers with a JSON 500 instead of a traceback.

This module assembles the app: start-up loading (``loaders``), the routes and error handlers (``routes``), the
request and response models (``schemas``) published exactly in the OpenAPI document; and runs it with uvicorn.
Run: ``python -m recsys serve --host 127.0.0.1 --port 8000 [--artifacts DIR]``; docs at ``/docs``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from recsys.artifacts import artifacts_root
from recsys.journal import recover_interrupted_builds
from recsys.serving.loaders import load_products, load_recommender, stage_report
from recsys.serving.routes import add_error_handlers, router
from recsys.serving.schemas import RecommendRequest, exact_integer_bounds

log = logging.getLogger(__name__)


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
    app.state.root = root  # /health names it
    add_error_handlers(app)
    app.include_router(router)
    app.openapi = exact_integer_bounds(app.openapi, [RecommendRequest])
    return app


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
