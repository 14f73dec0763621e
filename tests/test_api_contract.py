"""The API against its own OpenAPI document: schemathesis (``--checks all``) fuzzes a real ``python -m recsys serve``
on loopback over the small demo build, and over copies with damaged stages, where the 503 answers must be
documented, carry the ``Error`` body and come only from the endpoints that read the damaged stage.

A failure prints schemathesis' report, with a curl line that reproduces each case. ``SCHEMATHESIS_SEED`` picks
another seed (the default one keeps CI deterministic)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import api_server

SEED = os.environ.get("SCHEMATHESIS_SEED", "1")
MAX_EXAMPLES = 30


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def config(demo_artifacts: Path, serving_503: tuple[str, ...] = ()) -> str:
    """schemathesis.toml: known users and products for half the ids (else every id is a 404 and the fuzzer never
    reaches a 200), and which tags may answer 503 (every other 5xx still fails ``not_a_server_error``)."""
    users = np.load(demo_artifacts / "model" / "user_ids.npy")
    cards = pd.read_parquet(demo_artifacts / "products" / "products.parquet", columns=["product_id"])
    products = cards["product_id"].to_numpy()
    pick = lambda a: [int(a[0]), int(a[len(a) // 2]), int(a[-1])]  # noqa: E731
    text = (f"[dictionaries.users]\nvalues = {pick(users)}\n[dictionaries.products]\nvalues = {pick(products)}\n"
            "[parameters]\n"
            '"path.user_id" = { dictionary = "users", probability = 0.5 }\n'
            '"body.user_id" = { dictionary = "users", probability = 0.5 }\n'
            '"path.product_id" = { dictionary = "products", probability = 0.5 }\n')
    for tag in serving_503:
        text += (f'\n[[operations]]\ninclude-tag = "{tag}"\n'
                 'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]\n')
    return text


def schemathesis(url: str, workdir: Path, toml: str, max_examples: int = MAX_EXAMPLES) -> tuple[int, str]:
    """``schemathesis run`` with every check against ``url``; (exit code, report)."""
    cfg = workdir / "schemathesis.toml"
    cfg.write_text(toml)
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(cfg), "run", f"{url}/openapi.json",
           "--checks", "all", "--max-examples", str(max_examples), "--seed", SEED, "--workers", "1",
           "--generation-database", "none", "--request-timeout", "20", "--no-color"]
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def test_api_conforms_to_its_openapi_document(demo_artifacts, tmp_path):
    with api_server(demo_artifacts) as url:
        code, report = schemathesis(url, tmp_path, config(demo_artifacts))
    assert code == 0, report[-8000:]
    assert "No issues found" in report and "6 selected / 6 total" in report, report[-3000:]


# (files to damage, tags whose endpoints answer 503)
DAMAGED = {
    "model-and-index": ([("model/model.pt", truncate), ("index/items.faiss", Path.unlink)], ("recommendations",)),
    "products": ([("products/substitutes.parquet", truncate)], ("products",)),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_stages_answer_documented_503s_and_nothing_else_fails(demo_artifacts, tmp_path, case):
    damage, down = DAMAGED[case]
    store = tmp_path / "artifacts"
    shutil.copytree(demo_artifacts, store)
    for file, how in damage:
        how(store / file)
    with api_server(store) as url:
        import httpx
        h = httpx.get(f"{url}/health").json()
        assert h["status"] == "degraded" and all(any(f in p for p in h["problems"]) for f, _ in damage), h
        code, report = schemathesis(url, tmp_path, config(demo_artifacts, down), max_examples=15)
    assert code == 0, report[-8000:]
    assert "No issues found" in report, report[-3000:]
