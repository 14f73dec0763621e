"""20 concurrent clients against a real ``python -m recsys serve`` on loopback: no errors, no cross-talk.

Each of 20 threads has its own keep-alive connection and its own users, and sends a fixed mix of POST /recommend,
GET /products/{id}/similar, GET /search and one unknown id. Every answer must be a 200 with a body of the
documented model (or the documented 404 for the unknown id) and equal to what the same request got when it was
sent alone, before the load: a user's list under load is that user's list. Prints throughput and p50/p99."""
from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from recsys.serving.schemas import Error, Recommendations, SearchResults, Similar
from tests.conftest import api_server

CLIENTS = 20
ROUNDS = 6  # each round: 2 recommends, 1 similar, 1 search per client
QUERIES = ["samsung smartphone", "cheap headphones", "kitchen mixer", "apple", "premium laptop", "bosch"]
MODELS = {"recommend": Recommendations, "similar": Similar, "search": SearchResults}


def plan(users: np.ndarray, products: np.ndarray, client: int) -> list[tuple[str, str, str, dict | None]]:
    """(kind, method, path, body) of one client's requests: its own users, shared products and queries."""
    reqs = []
    for r in range(ROUNDS):
        for u in users[(client * 2 * ROUNDS + 2 * r) % len(users):][:2]:
            reqs.append(("recommend", "POST", "/recommend",
                         {"user_id": int(u), "num_recommendations": 5 + client % 3, "diversity_weight": 0.3}))
        p = int(products[(client * 7 + r) % len(products)])
        reqs.append(("similar", "GET", f"/products/{p}/similar?k={3 + r % 4}", None))
        reqs.append(("search", "GET", f"/search?q={QUERIES[(client + r) % len(QUERIES)]}&k=5", None))
    reqs.append(("unknown", "POST", "/recommend", {"user_id": 1}))  # no such user in the demo store
    return reqs


def send(c: httpx.Client, method: str, path: str, body: dict | None) -> httpx.Response:
    return c.request(method, path, json=body) if body is not None else c.request(method, path)


@pytest.mark.slow
def test_20_concurrent_clients_get_their_own_answers(demo_artifacts):
    users = np.load(demo_artifacts / "model" / "user_ids.npy")
    users = users[np.random.default_rng(0).permutation(len(users))][: CLIENTS * 2 * ROUNDS]
    products = pd.read_parquet(demo_artifacts / "products" / "products.parquet", columns=["product_id"])
    products = products["product_id"].to_numpy()[:: max(1, len(products) // 50)]
    plans = [plan(users, products, i) for i in range(CLIENTS)]
    with api_server(demo_artifacts) as url:
        unique = {(m, p, repr(b)): (m, p, b) for pl in plans for _, m, p, b in pl}
        alone = {}
        with httpx.Client(base_url=url, timeout=60) as c:  # the answer each request gets alone
            for key, (m, p, b) in unique.items():
                r = send(c, m, p, b)
                alone[key] = (r.status_code, r.json())
        results: list[list[tuple[str, str, str, dict | None, int, dict, float]]] = [[] for _ in range(CLIENTS)]
        failures: list[str] = []
        start = threading.Barrier(CLIENTS)

        def client(i: int) -> None:
            try:
                with httpx.Client(base_url=url, timeout=60) as c:
                    start.wait()
                    for kind, m, p, b in plans[i]:
                        t0 = time.perf_counter()
                        r = send(c, m, p, b)
                        results[i].append((kind, m, p, b, r.status_code, r.json(), time.perf_counter() - t0))
            except Exception as exc:  # reported below: a thread's exception would otherwise vanish
                failures.append(f"client {i}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        wall = time.perf_counter() - t0
    assert not failures, failures
    assert [len(r) for r in results] == [len(p) for p in plans]
    for rows in results:
        for kind, m, p, b, status, body, _ in rows:
            if kind == "unknown":
                assert status == 404 and Error.model_validate(body).detail.startswith("unknown user_id 1"), body
                continue
            assert status == 200, (m, p, b, status, body)
            MODELS[kind].model_validate(body)
            if kind == "recommend":
                assert body["user_id"] == b["user_id"] and len(body["recommendations"]) == b["num_recommendations"]
            assert (status, body) == alone[(m, p, repr(b))], (m, p, b)  # the same answer as alone: no cross-talk
    lat = np.array([row[-1] for rows in results for row in rows]) * 1000
    print(f"\n{CLIENTS} clients, {len(lat)} requests in {wall:.2f} s: {len(lat) / wall:.0f} req/s, "
          f"p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms")
