"""The build pipeline: every stage with a manifest, skipping when unchanged, atomic and deterministic."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from recsys.artifacts import read_manifest
from recsys.journal import StageResult, run_stage
from recsys.build import STAGES, build

MANIFEST_KEYS = {"stage", "input_fingerprint", "seed", "params", "rows", "files", "duration_s", "built_at"}


def test_every_stage_has_a_manifest(demo_artifacts):
    for stage in ["events", *(s.name for s in STAGES)]:
        m = read_manifest(demo_artifacts, stage)
        assert m is not None, stage
        assert MANIFEST_KEYS <= set(m), (stage, MANIFEST_KEYS - set(m))


def test_unchanged_build_skips_every_stage(demo_artifacts):
    from tests.conftest import SMALL_DEMO_EVENTS
    summary = build(demo_artifacts, demo_events=SMALL_DEMO_EVENTS, seed=7)
    assert {k: v["built"] for k, v in summary.items()} == {k: False for k in summary}


def test_same_seed_same_events(tmp_path):
    a = build(tmp_path / "a", demo_events=3000, seed=3, only=[])
    b = build(tmp_path / "b", demo_events=3000, seed=3, only=[])
    assert a["events"]["built"] and b["events"]["built"]
    fa = pd.read_parquet(tmp_path / "a" / "events" / "events.parquet")
    fb = pd.read_parquet(tmp_path / "b" / "events" / "events.parquet")
    pd.testing.assert_frame_equal(fa, fb)
    qa = json.loads((tmp_path / "a" / "events" / "quality.json").read_text())
    assert qa["source"] == "demo" and qa["rows_read"] == qa["rows_kept"] + sum(qa["dropped"].values())


def test_failing_stage_keeps_the_previous_good_one(tmp_path):
    def good(tmp, progress):
        (tmp / "x.txt").write_text("v1")
        return StageResult(rows={"x": 1}, params={})

    def bad(tmp, progress):
        (tmp / "x.txt").write_text("half")
        raise ValueError("boom")

    run_stage(tmp_path, "demo_stage", good, input_fingerprint="a")
    with pytest.raises(ValueError):
        run_stage(tmp_path, "demo_stage", bad, input_fingerprint="b")
    assert (tmp_path / "demo_stage" / "x.txt").read_text() == "v1"
    assert read_manifest(tmp_path, "demo_stage")["input_fingerprint"] == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["demo_stage"]


@pytest.mark.slow  # two builds of the events and aggregates stages
def test_aggregates_are_byte_identical_across_builds(tmp_path):
    """Same events, two aggregates builds: the same bytes (fully ordered rows; money summed exactly, since a
    parallel float sum depends on the order the threads happened to add in)."""
    import filecmp
    import shutil
    from recsys.aggregates.stage import build_aggregates_stage
    build(tmp_path / "a", demo_events=150_000, seed=3, only=[])
    shutil.copytree(tmp_path / "a" / "events", tmp_path / "b" / "events")
    for d in ("a", "b"):
        build_aggregates_stage(tmp_path / d)
    files = sorted(p.name for p in (tmp_path / "a" / "aggregates").glob("*.parquet"))
    assert len(files) == 12  # retention and product_sales (issue #15) among them
    assert [f for f in files if not filecmp.cmp(tmp_path / "a" / "aggregates" / f,
                                               tmp_path / "b" / "aggregates" / f, shallow=False)] == []


def test_leftovers_of_killed_builds_are_swept_and_a_lost_stage_restored(tmp_path):
    """A killed build leaves .tmp-<stage>-<pid>-* folders (and, between its two renames, only .old-<stage>-<pid>):
    the next build of that stage removes the dead ones, keeps a live build's, and puts the old stage back."""
    import os
    import subprocess
    import sys

    from recsys.journal import atomic_stage, sweep_leftovers
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".tmp-rules-{dead}-abc").mkdir()
    (tmp_path / ".tmp-rules-x1y2").mkdir()                      # an older version's name, without a pid
    (tmp_path / f".tmp-rules-{os.getpid()}-live").mkdir()      # a build still running (this process)
    (tmp_path / f".tmp-events-{dead}-zz").mkdir()              # another stage: left to that stage's build
    old = tmp_path / f".old-rules-{dead}"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    removed = sweep_leftovers(tmp_path, "rules")
    assert sorted(p.name for p in removed) == sorted([f".tmp-rules-{dead}-abc", ".tmp-rules-x1y2"])
    assert (tmp_path / "rules" / "manifest.json").exists() and not old.exists()   # the lost stage is back
    assert (tmp_path / f".tmp-rules-{os.getpid()}-live").exists()
    assert (tmp_path / f".tmp-events-{dead}-zz").exists()
    with atomic_stage(tmp_path, "rules") as tmp:
        assert tmp.name.startswith(f".tmp-rules-{os.getpid()}-")
        (tmp / "x").write_text("new")
    assert (tmp_path / "rules" / "x").read_text() == "new" and not list(tmp_path.glob(".old-rules-*"))


# ---- a stage's manifest verifies its own files -------------------------------------------------------------

def _two_files(tmp, progress):
    (tmp / "a.bin").write_bytes(b"a" * 1000)
    (tmp / "sub").mkdir()
    (tmp / "sub" / "b.json").write_text('{"b": 1}')
    return StageResult(rows={"a": 1}, params={})


def test_manifest_records_size_and_hash_of_every_file(tmp_path):
    import hashlib
    m, built = run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")
    assert built and set(m["files"]) == {"a.bin", "sub/b.json"}
    assert m["files"]["a.bin"] == {"bytes": 1000, "sha256": hashlib.sha256(b"a" * 1000).hexdigest()}


@pytest.mark.parametrize("damage,why", [
    (lambda d: (d / "a.bin").write_bytes(b"a" * 10), "demo_stage/a.bin has 10 bytes"),        # truncated
    (lambda d: (d / "a.bin").write_bytes(b"b" * 1000), "demo_stage/a.bin was changed"),       # same size
    (lambda d: (d / "sub" / "b.json").unlink(), "demo_stage/sub/b.json is missing"),
    (lambda d: (d / "manifest.json").write_text('{"stage": "demo'), "demo_stage/manifest.json is unreadable"),
    (lambda d: (d / "manifest.json").write_text('[1, 2]'), "demo_stage/manifest.json is unreadable"),
])
def test_up_to_date_check_rebuilds_damaged_files_and_logs_why(tmp_path, caplog, damage, why):
    run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")
    damage(tmp_path / "demo_stage")
    with caplog.at_level("WARNING", logger="recsys.artifacts"):
        m, built = run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")
    assert built and why in caplog.text
    assert (tmp_path / "demo_stage" / "a.bin").read_bytes() == b"a" * 1000
    assert run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")[1] is False


def test_loaders_check_sizes_and_name_the_damaged_file(tmp_path):
    from recsys.artifacts import DamagedStage, require_stage
    run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")
    assert require_stage(tmp_path, "demo_stage") == tmp_path / "demo_stage"
    (tmp_path / "demo_stage" / "a.bin").write_bytes(b"a" * 999)
    with pytest.raises(DamagedStage) as err:
        require_stage(tmp_path, "demo_stage")
    msg = str(err.value)
    assert msg.startswith("the demo_stage stage is damaged (demo_stage/a.bin has 999 bytes")
    assert "python -m recsys build" in msg and str(tmp_path) not in msg
    assert require_stage(tmp_path, "demo_stage", files=["sub/b.json"]) == tmp_path / "demo_stage"


def test_old_manifests_without_hashes_still_verify_sizes(tmp_path):
    run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")
    path = tmp_path / "demo_stage" / "manifest.json"
    m = json.loads(path.read_text())
    m["files"] = {k: {"bytes": v["bytes"]} for k, v in m["files"].items()}
    path.write_text(json.dumps(m))
    assert run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")[1] is False
    (tmp_path / "demo_stage" / "a.bin").write_bytes(b"a")
    assert run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")[1] is True


def test_a_stage_lost_between_renames_is_restored_and_reused(tmp_path):
    """A build killed between its two renames leaves only .old-<stage>-<pid>: the next build puts it back, checks
    it against its manifest and reuses it instead of rebuilding."""
    import subprocess
    import sys
    run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "demo_stage").rename(tmp_path / f".old-demo_stage-{dead}")
    assert run_stage(tmp_path, "demo_stage", _two_files, input_fingerprint="a")[1] is False
    assert [p.name for p in tmp_path.iterdir()] == ["demo_stage"]
