"""REST API: TestClient unit tests, a real uvicorn process on loopback, and a hypothesis fuzz of the OpenAPI spec."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.serving.api import create_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client(demo_artifacts):
    with TestClient(create_app(demo_artifacts), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def ids(client, demo_artifacts):
    from recsys.artifacts import connect
    svc = client.app.state.products
    con = connect(demo_artifacts)
    users = con.execute("SELECT user_id FROM events GROUP BY 1 ORDER BY count(*) DESC LIMIT 3").df()["user_id"]
    with_comp = int(svc.comps["product_id"].iat[0]) if len(svc.comps) else int(svc.ids[0])
    return {"user": int(users.iat[0]), "product": int(svc.ids[len(svc.ids) // 2]), "with_comp": with_comp,
            "missing_product": int(svc.ids.max()) + 1, "missing_user": 1}


def test_health_lists_loaded_artifacts(client):
    h = client.get("/health").json()
    assert h["products"] is True and h["stages"]["events"] and h["stages"]["products"]
    assert h["status"] == ("ok" if h["recommender"] else "degraded")


def test_search_returns_ranked_products(client):
    r = client.get("/search", params={"q": "samsung smartphone", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert len(body["items"]) == 5 and body["method"] in ("bm25", "tower")
    assert all(i["brand"] == "samsung" for i in body["items"])
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert client.get("/search", params={"q": "xyzzy"}).json()["items"] == []


def test_similar_has_both_lists_with_their_sources(client, ids):
    body = client.get(f"/products/{ids['product']}/similar", params={"k": 4}).json()
    assert body["product_id"] == ids["product"]
    assert body["neighbours"]["source"] in ("embedding", "features") and len(body["neighbours"]["items"]) == 4
    assert body["co_view"]["source"] == "co-view"
    assert ids["product"] not in {i["product_id"] for i in body["neighbours"]["items"]}


def test_complements(client, ids):
    body = client.get(f"/products/{ids['with_comp']}/complements").json()
    assert body["items"] and {i["source"] for i in body["items"]} <= {"co-purchase", "category complement"}


@pytest.mark.parametrize("path", ["/products/{p}/similar", "/products/{p}/complements"])
def test_unknown_product_is_404(client, ids, path):
    r = client.get(path.format(p=ids["missing_product"]))
    assert r.status_code == 404 and "unknown product_id" in r.json()["detail"]


@pytest.mark.parametrize("payload,field", [
    ({"user_id": "abc"}, "body.user_id"),
    ({"user_id": 1, "num_recommendations": 0}, "body.num_recommendations"),
    ({"user_id": 1, "diversity_weight": 1.5}, "body.diversity_weight"),
    ({"user_id": 1, "colour": "red"}, "body.colour"),
    ({}, "body.user_id"),
    ({"user_id": 2**70}, "body.user_id"),
])
def test_bad_recommend_payload_is_422_with_the_field(client, payload, field):
    r = client.post("/recommend", json=payload)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"].startswith("invalid request") and field in [e["field"] for e in body["errors"]]


@pytest.mark.parametrize("payload,field", [
    ({"user_id": True}, "body.user_id"),
    ({"user_id": False}, "body.user_id"),
    ({"user_id": 1.5}, "body.user_id"),
    ({"user_id": 2.0**60}, "body.user_id"),  # a float that large no longer says which integer was meant
    ({"user_id": "5"}, "body.user_id"),
    ({"user_id": 5, "num_recommendations": True}, "body.num_recommendations"),
    ({"user_id": 5, "num_recommendations": 2.5}, "body.num_recommendations"),
    ({"user_id": 5, "diversity_weight": True}, "body.diversity_weight"),
])
def test_recommend_payload_types_are_strict(client, payload, field):
    r = client.post("/recommend", json=payload)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field]


def test_true_is_not_user_1(client, ids, monkeypatch):
    """Even in a store that has a user 1, ``true`` does not reach the recommender (it did before strict types)."""
    svc = client.app.state.recommender
    if svc is None:
        pytest.skip("no recommender in this build")
    seen = []
    monkeypatch.setattr(svc, "recommend_for_user", lambda user_id, **kw: seen.append(user_id) or None)
    assert client.post("/recommend", json={"user_id": True}).status_code == 422
    assert client.post("/recommend", json={"user_id": 1}).status_code == 200 and seen == [1]


def test_whole_number_floats_are_integers(client, ids):
    """JSON Schema's ``integer`` admits ``5.0`` (schemathesis sends it): the same answer as ``5``."""
    if client.app.state.recommender is None:
        pytest.skip("no recommender in this build")
    as_int = client.post("/recommend", json={"user_id": ids["user"], "num_recommendations": 4})
    as_float = client.post("/recommend", json={"user_id": float(ids["user"]), "num_recommendations": 4.0})
    assert as_int.status_code == as_float.status_code == 200
    assert as_float.json() == as_int.json() and as_float.json()["user_id"] == ids["user"]
    assert len(as_float.json()["recommendations"]) == 4


def test_bad_query_and_path_values_are_422(client):
    assert client.get("/products/abc/similar").status_code == 422
    assert client.get("/products/-1/complements").status_code == 422
    assert client.get("/search", params={"q": ""}).status_code == 422
    assert client.get("/search", params={"q": "phone", "method": "magic"}).status_code == 422
    assert client.get("/users/5/recommendations", params={"diversity_weight": "nan"}).status_code == 422
    blank = client.get("/search", params={"q": "   "})
    assert blank.status_code == 422 and blank.json()["errors"] == [{"field": "query.q",
                                                                     "message": "the query is blank; type a few words"}]


@pytest.mark.parametrize("body", [b"{not json", b"\x80abc", b'{"user_id": 1'])
def test_unparsable_body_is_400_with_the_error_model(client, body):
    r = client.post("/recommend", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("invalid request: the body is not JSON")
    assert [e["field"] for e in r.json()["errors"]] == ["body"]


def _error_bodies(client, ids):
    """One real answer of every error status the API documents."""
    return {400: client.post("/recommend", content=b"{", headers={"content-type": "application/json"}),
            404: client.get(f"/products/{ids['missing_product']}/similar"),
            422: client.get("/search", params={"q": " "})}


def test_error_bodies_match_the_documented_error_model(client, ids, tmp_path):
    spec = client.get("/openapi.json").json()
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "errors"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's default 422 is not what we send
    for path, item in spec["paths"].items():
        for method, op in item.items():
            codes = {int(c) for c in op["responses"] if c != "200"}
            assert {422, 503} <= codes or path == "/health", (path, method)
            assert 400 in codes if "requestBody" in op else 400 not in codes, (path, method)
            for code in codes:
                ref = op["responses"][str(code)]["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/Error", (path, method, code)
    with TestClient(create_app(tmp_path / "nothing")) as bare:
        answers = {**_error_bodies(client, ids), 503: bare.get("/search", params={"q": "phone"})}
    for code, r in answers.items():
        body = r.json()
        assert r.status_code == code and set(body) == {"detail", "errors"}, (code, body)
        assert isinstance(body["detail"], str) and all(set(e) == {"field", "message"} for e in body["errors"])


def test_openapi_integer_bounds_are_integers(client):
    spec = client.get("/openapi.json").json()
    user_id = spec["components"]["schemas"]["RecommendRequest"]["properties"]["user_id"]
    assert user_id["maximum"] == 2**63 - 1 and type(user_id["maximum"]) is int and type(user_id["minimum"]) is int
    n = spec["components"]["schemas"]["RecommendRequest"]["properties"]["num_recommendations"]
    assert type(n["maximum"]) is int and type(n["minimum"]) is int


def test_health_and_errors_reveal_no_paths(demo_artifacts, tmp_path):
    with TestClient(create_app(demo_artifacts)) as c:
        assert str(demo_artifacts) not in c.get("/health").text
    with TestClient(create_app(tmp_path / "nothing")) as c:
        texts = [c.get("/health").text, c.get("/search", params={"q": "x"}).text,
                 c.post("/recommend", json={"user_id": 1}).text]
    assert all(str(tmp_path) not in t for t in texts), texts
    assert all("run `python -m recsys build --artifacts .../nothing`" in t for t in texts), texts


def test_503_names_a_relative_artifacts_directory_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app("store/artifacts")) as c:
        r = c.get("/search", params={"q": "phone"})
    assert r.status_code == 503 and r.json()["detail"] == (
        "product lookups (/products/{product_id}/similar, /products/{product_id}/complements, /search) are "
        "unavailable: the products stage is not built; run `python -m recsys build --artifacts store/artifacts`")


def test_recommend_serves_users_or_says_model_not_built(client, ids, demo_artifacts):
    from recsys.artifacts import read_manifest
    r = client.post("/recommend", json={"user_id": ids["user"], "num_recommendations": 5, "diversity_weight": 0.3})
    if read_manifest(demo_artifacts, "model") is None:  # a build without the two-tower stage
        assert r.status_code == 503 and "the model stage is not built" in r.json()["detail"]
        return
    assert r.status_code == 200
    recs = r.json()["recommendations"]
    assert len(recs) == 5 and all(x["reason"] for x in recs)
    same = client.get(f"/users/{ids['user']}/recommendations", params={"num_recommendations": 5}).json()
    assert [x["product_id"] for x in same["recommendations"]] == [x["product_id"] for x in recs]
    assert client.post("/recommend", json={"user_id": ids["missing_user"]}).status_code == 404


def test_without_a_model_recommendations_are_503(demo_artifacts, tmp_path, ids):
    root = tmp_path / "no-model"
    shutil.copytree(demo_artifacts, root, ignore=shutil.ignore_patterns("model", "index"))
    with TestClient(create_app(root)) as c:
        r = c.post("/recommend", json={"user_id": ids["user"]})
        assert r.status_code == 503 and "the model stage is not built" in r.json()["detail"]
        assert c.get("/health").json()["status"] == "degraded"
        assert c.get("/search", params={"q": "kitchen mixer"}).status_code == 200  # the rest still works


def test_missing_products_stage_is_503_not_500(tmp_path):
    with TestClient(create_app(tmp_path / "nothing")) as c:
        r = c.get("/search", params={"q": "phone"})
        assert r.status_code == 503 and "python -m recsys build" in r.json()["detail"]


def test_unexpected_errors_are_json_500(client, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("planted")
    monkeypatch.setattr(client.app.state.products, "search", boom)
    r = client.get("/search", params={"q": "phone"})
    assert r.status_code == 500 and "internal error (RuntimeError)" in r.json()["detail"]


def test_openapi_documents_every_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert {"/recommend", "/users/{user_id}/recommendations", "/products/{product_id}/similar",
            "/products/{product_id}/complements", "/search", "/health"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/") for a in assets)  # offline: no CDN
    assert all(client.get(a).status_code == 200 for a in assets)


# ---- a real server ------------------------------------------------------------------------------------------


def test_real_uvicorn_process(demo_artifacts, ids):
    from tests.conftest import api_server
    with api_server(demo_artifacts) as url:
        health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=5).read())
        assert health["products"] is True
        q = urllib.parse.urlencode({"q": "kitchen mixer", "k": 3})
        body = json.loads(urllib.request.urlopen(f"{url}/search?{q}", timeout=5).read())
        assert [i["category"] for i in body["items"]] == ["appliances.kitchen.mixer"] * 3
        body = json.loads(urllib.request.urlopen(f"{url}/products/{ids['with_comp']}/complements", timeout=5).read())
        assert body["items"]
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}/products/{ids['missing_product']}/similar", timeout=5)
        assert err.value.code == 404


# ---- property-based fuzz of the OpenAPI spec ------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=10)


def _value(schema: dict) -> st.SearchStrategy:
    """Mostly plausible values for a parameter schema, plus junk of every JSON type and extreme numbers."""
    kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
    plausible = st.nothing()
    if "integer" in kinds:
        plausible |= st.integers(-5, 2**64) | st.integers(schema.get("minimum", 0), schema.get("maximum", 100))
    if "number" in kinds:
        plausible |= st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(["nan", "inf", "-0", "1e999"])
    if "string" in kinds:
        plausible |= st.text(max_size=60) | st.sampled_from(schema.get("enum", ["phone"]))
    return plausible | st.text(max_size=12) | st.integers() | st.floats()


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()]


@pytest.fixture(scope="module")
def spec(client):
    return client.get("/openapi.json").json()


def test_fuzz_openapi_finds_no_server_errors(client, spec, ids):
    ops = _operations(spec)
    body_schema = spec["components"]["schemas"]["RecommendRequest"]["properties"]

    @st.composite
    def requests(draw):
        path, method, op = draw(st.sampled_from(ops))
        url, query = path, {}
        for p in op.get("parameters", []):
            v = draw(st.one_of(_value(p["schema"]), st.sampled_from([ids["product"], ids["user"]])))
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", urllib.parse.quote(str(v), safe="") or "0")
            elif draw(st.booleans()):
                query[p["name"]] = str(v)
        body = None
        if "requestBody" in op:
            fields = {k: _value(s) | st.just(ids["user"]) for k, s in body_schema.items()}
            body = draw(st.one_of(st.fixed_dictionaries({}, optional=fields), JSON))
        return method, url, query, body

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(requests())
    def check(req):
        method, url, query, body = req
        r = client.request(method.upper(), url, params=query, json=body)
        no_model = client.app.state.recommender is None and "recommend" in url
        assert r.status_code < 500 or (r.status_code == 503 and no_model), (method, url, query, body, r.text)
        assert r.headers["content-type"].startswith("application/json")

    check()


def test_serve_without_artifacts_says_how_to_build(tmp_path):
    from tests.conftest import _free_port
    r = subprocess.run([sys.executable, "-m", "recsys", "serve", "--artifacts", str(tmp_path / "none"),
                        "--port", str(_free_port())], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "python -m recsys build" in r.stderr
