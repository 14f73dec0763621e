"""Text search benchmark: BM25 against the query tower (vs the two-tower item embeddings and vs its own item
text tower), on held-out text variants of sampled products, plus query latency and the demo queries' top 5.

    python benchmarks/search.py --artifacts /tmp/demo [--runs 5]

Quality: hit rate@10 of each sampled product for its own held-out text variant, MRR, and the share of the
top 10 in the product's category. Latency: ``ProductService.search`` (tokenise, score every product, top 10),
p50/p99 over the query set, median over runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.products.service import ProductService  # noqa: E402
from recsys.products.stage import model_item_embeddings  # noqa: E402
from recsys.products.search import build_search  # noqa: E402

QUERIES = ["samsung smartphone", "cheap headphones", "kitchen mixer", "apple", "premium laptop", "bosch drill",
           "budget tv", "xiaomi", "coffee machine", "samsng phone", "vacuum cleaner", "expensive watch"]


def latency(svc: ProductService, method: str, runs: int) -> dict[str, float]:
    """p50/p99 of one search call (ms), median over runs."""
    p50, p99 = [], []
    for _ in range(runs):
        t = []
        for _ in range(20):
            for q in QUERIES:
                t0 = time.perf_counter()
                svc.search(q, 10, method)
                t.append((time.perf_counter() - t0) * 1000)
        p50.append(float(np.percentile(t, 50)))
        p99.append(float(np.percentile(t, 99)))
    return {"p50_ms": round(statistics.median(p50), 3), "p99_ms": round(statistics.median(p99), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    svc = ProductService(args.artifacts)
    out = {"products": len(svc.cards), "built_default": svc.search_index.default, "quality": {}, "latency": {}}
    emb = model_item_embeddings(args.artifacts, svc.ids)
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"text item tower": None}
        if emb is not None:
            variants["two-tower item embeddings"] = emb
        for name, e in variants.items():
            t0 = time.perf_counter()
            rep = build_search(svc.cards, Path(tmp) / name.replace(" ", "_"), item_embeddings=e, seed=args.seed)
            out["quality"]["bm25"] = rep["metrics"]["bm25"]
            out["quality"][f"tower vs {name}"] = {**rep["metrics"]["tower"],
                                                  "build_s": round(time.perf_counter() - t0, 1)}
    for m in ("bm25", "tower"):
        out["latency"][m] = latency(svc, m, args.runs)
    out["top5"] = {q: [f"{r.brand} {r.category} ${r.price:.0f} ({r.price_band})"
                       for r in svc.search(q, 5).itertuples()] for q in QUERIES[:3]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
