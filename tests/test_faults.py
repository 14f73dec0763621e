"""Damaged and missing artifacts: the API keeps serving what is intact (503 naming the damaged file elsewhere), the
CLI prints one line instead of a traceback, and ``build`` rebuilds what fails its manifest's check (and only what
depends on it). Every test damages a copy of the shared demo build, never the build itself."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys.serving.api import create_app
from recsys.cli import main

REPO = Path(__file__).resolve().parents[1]
PRODUCT_ENDPOINTS = {"similar", "complements", "search"}
EVERY_ENDPOINT = {"recommend", *PRODUCT_ENDPOINTS}


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path: Path) -> None:
    """Same size, other bytes: only the recorded hash tells."""
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def delete(path: Path) -> None:
    path.unlink()


@pytest.fixture()
def store(demo_artifacts, tmp_path) -> Path:
    """A private copy of the demo build to damage."""
    root = tmp_path / "artifacts"
    shutil.copytree(demo_artifacts, root)
    return root


@pytest.fixture(scope="module")
def known(demo_artifacts) -> dict[str, int]:
    cards = pd.read_parquet(demo_artifacts / "products" / "products.parquet")
    return {"user": int(np.load(demo_artifacts / "model" / "user_ids.npy")[0]),
            "product": int(cards["product_id"].iat[len(cards) // 2])}


def answers(c: TestClient, known: dict[str, int]) -> dict[str, tuple[int, dict]]:
    """(status, body) of one request to each endpoint that reads artifacts."""
    p = known["product"]
    rs = {"recommend": c.post("/recommend", json={"user_id": known["user"]}),
          "similar": c.get(f"/products/{p}/similar"), "complements": c.get(f"/products/{p}/complements"),
          "search": c.get("/search", params={"q": "phone"})}
    return {k: (r.status_code, r.json()) for k, r in rs.items()}


# (file, damage, endpoints that must answer 503)
API_CASES = [
    ("model/model.pt", truncate, {"recommend"}),
    ("model/model.pt", garble, {"recommend"}),
    ("model/manifest.json", truncate, {"recommend"}),
    ("model/item_embeddings.npy", delete, {"recommend"}),
    ("index/items.faiss", delete, {"recommend"}),
    ("index/items.faiss", truncate, {"recommend"}),
    ("products/products.parquet", garble, PRODUCT_ENDPOINTS),
    ("products/substitutes.parquet", truncate, PRODUCT_ENDPOINTS),
    ("products/manifest.json", delete, PRODUCT_ENDPOINTS),
    ("events/events.parquet", truncate, set()),
    ("rules/rules.parquet", truncate, set()),              # read by the build only
    ("evaluation/results.parquet", delete, set()),
    ("aggregates/kpis.json", garble, set()),
]
SERVED_STAGES = {"events", "rules", "model", "index", "products"}  # the ones /health checks
ENDPOINT_NAMES = {"recommend": "recommendations (/recommend, /users/{user_id}/recommendations) are unavailable",
                  **dict.fromkeys(PRODUCT_ENDPOINTS, "product lookups (/products/{product_id}/similar, "
                                                     "/products/{product_id}/complements, /search) are unavailable")}


@pytest.mark.parametrize("file,damage,down", API_CASES, ids=[f"{f}-{d.__name__}" for f, d, _ in API_CASES])
def test_api_starts_and_answers_503_only_where_artifacts_are_damaged(store, known, file, damage, down):
    damage(store / file)
    with TestClient(create_app(store), raise_server_exceptions=False) as c:
        got = answers(c, known)
        health = c.get("/health")
    assert {k for k, (status, _) in got.items() if status == 503} == down, got
    assert all(status == 200 for k, (status, _) in got.items() if k not in down), got
    stage = file.split("/")[0]
    for k in down:
        detail = got[k][1]["detail"]
        assert detail.startswith(ENDPOINT_NAMES[k]) and f"the {stage} stage is" in detail, detail
        assert detail.endswith(f"; run `python -m recsys build --artifacts .../{store.name}`"), detail
        if not file.endswith("manifest.json") or damage is not delete:
            assert file in detail, detail        # names the damaged file, relative to the artifacts directory
    h = health.json()
    assert health.status_code == 200 and h["status"] == ("degraded" if stage in SERVED_STAGES else "ok"), h
    assert (any(file in p for p in h["problems"]) or damage is delete and file.endswith("manifest.json")
            or stage not in SERVED_STAGES), h
    for text in [health.text, *(json.dumps(body) for _, body in got.values())]:
        assert str(store) not in text and str(store.parent) not in text   # no absolute paths
        assert "PytorchStreamReader" not in text and "Error" not in text  # no exception text


def test_product_service_error_names_no_absolute_path(store):
    from recsys.artifacts import ArtifactError
    from recsys.products.service import ProductService
    garble(store / "products" / "products.parquet")  # same size: the load itself fails
    with pytest.raises(ArtifactError) as err:
        ProductService(store)
    text = str(err.value)
    assert str(store) not in text and "the products stage is unreadable" in text and "products/" in text, text


def test_api_with_nothing_built_is_503_everywhere_without_paths(tmp_path, known):
    root = tmp_path / "nothing"
    with TestClient(create_app(root)) as c:
        got = answers(c, known)
        health = c.get("/health").text
    assert {k for k, (s, _) in got.items() if s == 503} == EVERY_ENDPOINT
    assert "not built" in got["recommend"][1]["detail"] and "not built" in got["search"][1]["detail"]
    assert str(tmp_path) not in health and all(str(tmp_path) not in json.dumps(b) for _, b in got.values())


# ---- the CLI ----------------------------------------------------------------------------------------------

def one_line_error(capsys, progress: bool = False) -> str:
    """The one error line on stderr (``progress``: after a progress bar's lines)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and (len(err) == 1 or progress), err
    assert err[-1].startswith("error: ") and sum(line.startswith("error: ") for line in err) == 1, err
    return err[-1]


CLI_CASES = [
    ("model/model.pt", truncate), ("model/model.pt", garble), ("model/manifest.json", truncate),
    ("model/histories/item.npy", delete), ("model/ranker/state/user_vecs.npy", truncate), ("index/items.faiss", delete), ("index/items.faiss", garble),
]


@pytest.mark.parametrize("file,damage", CLI_CASES, ids=[f"{f}-{d.__name__}" for f, d in CLI_CASES])
def test_cli_recommend_on_damaged_artifacts_prints_one_line(store, known, capsys, file, damage):
    damage(store / file)
    assert main(["recommend", "--user", str(known["user"]), "--artifacts", str(store)]) != 0
    err = one_line_error(capsys)
    assert file in err and f"python -m recsys build --artifacts {store}" in err, err


@pytest.mark.parametrize("args,says", [
    (["--user", "1"], "unknown user_id 1"),
    (["--user", "-1"], "unknown user_id -1"),
    (["--user", str(2**70)], "user"),
    (["--products", "999999999999"], "unknown product_id"),
    (["--products", str(2**70)], "product"),
    (["--user", "{user}", "--top-n", "0"], "top_n"),
    (["--user", "{user}", "--diversity", "2"], "diversity"),
])
def test_cli_recommend_bad_ids_print_one_line(demo_artifacts, known, capsys, args, says):
    args = [a.format(user=known["user"]) for a in args]
    assert run_cli(["recommend", *args, "--artifacts", str(demo_artifacts)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and says in err, err


def run_cli(args: list[str]) -> int:
    """main()'s exit code, argparse's usage errors (SystemExit) included."""
    try:
        return main(args)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("file,damage", [("evaluation/results.parquet", truncate),
                                         ("evaluation/results.parquet", garble),
                                         ("evaluation/summary.json", delete),
                                         ("evaluation/manifest.json", truncate)])
def test_cli_evaluate_on_damaged_artifacts_prints_one_line(store, capsys, file, damage):
    damage(store / file)
    assert main(["evaluate", "--artifacts", str(store)]) != 0
    assert file in one_line_error(capsys)


def test_cli_commands_without_artifacts_print_one_line(tmp_path, capsys):
    empty = str(tmp_path / "none")
    for args in (["recommend", "--user", "1"], ["evaluate"], ["serve", "--port", "1"]):
        assert main([*args, "--artifacts", empty]) == 2
        err = one_line_error(capsys)
        assert "python -m recsys build" in err, err
    assert main(["ingest", str(tmp_path / "missing.csv"), "--artifacts", empty]) == 2
    one_line_error(capsys, progress=True)
    assert main(["demo", "--events", "10", "--out", str(tmp_path / "no" / "such" / "dir" / "x.csv")]) == 2
    one_line_error(capsys, progress=True)


def test_cli_unexpected_errors_are_one_line_too(store, capsys, monkeypatch):
    import recsys.evaluation.stage
    monkeypatch.setattr(recsys.evaluation.stage, "format_evaluation", lambda *a, **k: 1 / 0)
    assert main(["evaluate", "--artifacts", str(store)]) == 1
    assert "ZeroDivisionError" in one_line_error(capsys)


def test_cli_recommend_subprocess_has_no_traceback(store, known):
    truncate(store / "model" / "model.pt")
    r = subprocess.run([sys.executable, "-m", "recsys", "recommend", "--user", str(known["user"]), "--artifacts",
                        str(store)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "model/model.pt" in r.stderr, r.stderr



def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_starts_with_a_damaged_model(store, known):
    truncate(store / "model" / "model.pt")
    delete(store / "index" / "items.faiss")
    from tests.conftest import api_server
    with api_server(store) as url:
        status, health = _get(f"{url}/health")
        assert health["status"] == "degraded" and health["products"] and not health["recommender"]
        status, body = _get(f"{url}/users/{known['user']}/recommendations")
        assert status == 503 and "model/model.pt" in body["detail"] and "index/items.faiss" in body["detail"]
        assert health["problems"] == [body["detail"]]  # one problem, one rebuild, both files named
        assert _get(f"{url}/search?q=phone")[0] == 200
        assert _get(f"{url}/products/{known['product']}/similar")[0] == 200


# ---- build rebuilds what fails the check ------------------------------------------------------------------

ALL_STAGES = {"events", "aggregates", "rules", "model", "index", "products", "evaluation"}
BUILD_CASES = [
    ("events/events.parquet", truncate, ALL_STAGES),
    ("products/products.parquet", garble, {"products"}),
    ("model/model.pt", truncate, {"model", "index", "products"}),
    ("index/items.faiss", delete, {"index"}),
    ("rules/manifest.json", truncate, {"rules", "products"}),
    ("aggregates/kpis.json", garble, {"aggregates"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("file,damage,rebuilt", BUILD_CASES, ids=[f"{f}-{d.__name__}" for f, d, _ in BUILD_CASES])
def test_build_rebuilds_the_damaged_stage_and_what_depends_on_it(store, known, caplog, file, damage, rebuilt):
    from recsys.build import build
    from tests.conftest import SMALL_DEMO_EVENTS
    damage(store / file)
    with caplog.at_level("WARNING", logger="recsys.artifacts"):
        summary = build(store, demo_events=SMALL_DEMO_EVENTS, seed=7)
    assert {s for s, v in summary.items() if v["built"]} == rebuilt
    assert file in caplog.text                                   # why it was rebuilt
    with TestClient(create_app(store)) as c:
        assert {k: s for k, (s, _) in answers(c, known).items()} == {k: 200 for k in EVERY_ENDPOINT}
        assert c.get("/health").json()["problems"] == []
    again = build(store, demo_events=SMALL_DEMO_EVENTS, seed=7)
    assert not any(v["built"] for v in again.values())


def test_api_rolls_back_a_killed_build_before_it_loads(store, known):
    """The model stage of a killed build is half-written (no manifest) and the journal holds the previous one: the
    API puts the previous model back at start-up and serves it, rather than a 503 or a mix of two builds."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    journal = store / f".build-{dead}-x"
    journal.mkdir()
    (store / "model").rename(journal / "model")
    (store / "model").mkdir()
    (store / "model" / "model.pt").write_bytes(b"half")
    with TestClient(create_app(store)) as c:
        assert all(status == 200 for status, _ in answers(c, known).values())
        assert c.get("/health").json()["problems"] == []
    assert not journal.exists() and (store / "model" / "manifest.json").exists()


def test_saved_arrays_come_back_memory_mapped_and_a_damaged_one_is_named(tmp_path):
    from recsys.artifacts import load_arrays, save_arrays
    save_arrays(tmp_path / "a", {"x": np.arange(5, dtype=np.int32), "y": np.eye(2, dtype=np.float32)})
    got = load_arrays(tmp_path / "a")
    assert sorted(got) == ["x", "y"] and isinstance(got["x"].base, np.memmap) and not got["x"].flags.writeable
    np.testing.assert_array_equal(got["x"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(load_arrays(tmp_path / "a", mmap=False)["y"], np.eye(2))
    with pytest.raises(TypeError, match="object"):
        save_arrays(tmp_path / "b", {"s": np.array(["a", None], dtype=object)})
    (tmp_path / "a" / "y.npy").write_bytes((tmp_path / "a" / "y.npy").read_bytes()[:40])
    with pytest.raises(ValueError, match=r"y\.npy is damaged .*rebuild"):
        load_arrays(tmp_path / "a")


def test_prefetch_advises_each_array_smallest_first_in_the_background_and_within_the_budget(tmp_path, monkeypatch):
    import os
    import threading
    from recsys import artifacts
    from recsys.artifacts import prefetch, save_arrays
    save_arrays(tmp_path / "a", {"big": np.zeros(4000), "small": np.zeros(10)})
    save_arrays(tmp_path / "b", {"mid": np.zeros(500)})
    advised = []
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, off, n, how: advised.append((os.readlink(f"/proc/self/fd/{fd}"), how)))
    monkeypatch.setattr(artifacts, "_available_bytes", lambda: 10**9)
    files = prefetch([tmp_path / "a", tmp_path / "missing", tmp_path / "b"])
    assert [f.name for f in files] == ["small.npy", "mid.npy", "big.npy"]
    for t in threading.enumerate():
        if t.name == "recsys-prefetch":
            t.join(10)
    assert advised == [(str(f), os.POSIX_FADV_WILLNEED) for f in files]
    monkeypatch.setattr(artifacts, "_available_bytes", lambda: 60_000)  # 2 x the files' 36 KB: over half of it
    assert prefetch([tmp_path / "a", tmp_path / "b"]) == []
    assert prefetch([tmp_path / "missing"]) == []


def test_the_service_prefetches_its_serving_state(demo_artifacts):
    from recsys.serving.service import load_recommender_service
    svc = load_recommender_service(demo_artifacts)
    names = {f.parent.name for f in svc.prefetched}
    assert names == ({"histories", "purchases", "state"} if svc.ranker is not None else {"histories", "purchases"})


def test_a_service_loaded_without_the_prefetch_is_prefetched_when_a_later_caller_asks(demo_artifacts, monkeypatch):
    """One service per build is cached: the app loads it without the prefetch, and an API or CLI caller in the same
    process that asks for it gets it then, once (not only whoever loaded first)."""
    from recsys.serving import service as sv
    monkeypatch.setattr(sv, "_SERVICES", {})
    quiet = sv.load_recommender_service(demo_artifacts, prefetch_state=False)
    assert quiet.prefetched == []
    asked = sv.load_recommender_service(demo_artifacts)
    assert asked is quiet and {f.parent.name for f in asked.prefetched} >= {"histories", "purchases"}
    assert asked.start_prefetch() == [] and asked.prefetched  # advised once; the list is kept


def test_the_app_loads_the_service_without_the_prefetch(demo_artifacts, monkeypatch):
    """The Recommender page makes one call per run: the 10 GB prefetch at Oct+Nov only competed for the disk with
    its first visit (23-27 s with it, 12-13 s without), so the app's loader turns it off."""
    import ui.recommender as page_loader
    from recsys.serving.service import RecommenderService
    assert RecommenderService(demo_artifacts, prefetch_state=False).prefetched == []
    seen = []
    monkeypatch.setattr(page_loader, "load_recommender_service", lambda root, **kw: seen.append(kw) or kw)
    page_loader.service.clear()
    page_loader.service(str(demo_artifacts), "a version no other test uses")
    page_loader.service.clear()
    assert seen == [{"prefetch_state": False}]
