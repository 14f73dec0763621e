"""The REST API's request and response models: the pydantic bodies, the validated path and query parameters, the
one ``Error`` body, and the OpenAPI ``responses`` of a route.

The routes that use them are in ``recsys.serving.routes``; the app that publishes them is ``recsys.serving.api``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

MAX_ID = 2**63 - 1  # ids are int64 in the column contract
MAX_ITEMS = 100
ProductId = Annotated[int, Path(ge=0, le=MAX_ID, description="a product_id of the store (int64)")]
UserId = Annotated[int, Path(ge=0, le=MAX_ID, description="a user_id of the store (int64)")]
Count = Annotated[int, Query(ge=1, le=MAX_ITEMS, description="how many items to return")]
Weight = Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False,
                                description="0 = pure relevance, 1 = spread across categories")]
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


def exact_integer_bounds(openapi: Callable[[], dict[str, Any]], models: list[type[BaseModel]]
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
