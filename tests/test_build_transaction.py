"""A whole build leaves either its new complete set or the previous complete set, never a mix of the two.

Builds here stop after the events, aggregates and rules stages (``only=``) to stay quick; the transaction does
not depend on which stages run.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recsys import build as build_module
from recsys.artifacts import read_manifest
from recsys.journal import recover_interrupted_builds
from recsys.build import StageSpec, build, build_demo_input

REPO = Path(__file__).resolve().parents[1]
STAGES = ["events", "aggregates", "rules"]
EVENTS = 4000


def snapshot(root: Path) -> dict[str, str]:
    """Every file of every stage (relative path -> SHA-256): two equal snapshots are the same artifact set."""
    out = {}
    for stage in STAGES:
        for p in sorted((root / stage).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".recover.lock")


def failing_rules(root, *, force: bool, progress):
    raise RuntimeError("rules stage failed on purpose")


@pytest.fixture()
def first_set(tmp_path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "art"
    build(root, demo_events=EVENTS, seed=3, only=["aggregates", "rules"])
    return root, snapshot(root)


def test_a_failing_later_stage_puts_the_previous_set_back(first_set, monkeypatch):
    root, before = first_set
    stages = [s if s.name != "rules" else StageSpec("rules", f"{__name__}:failing_rules")
              for s in build_module.STAGES]
    monkeypatch.setattr(build_module, "STAGES", stages)
    with pytest.raises(RuntimeError, match="on purpose"):
        build(root, demo_events=EVENTS, seed=4, only=["aggregates", "rules"])   # new events, then aggregates
    assert snapshot(root) == before            # events and aggregates of seed 4 were rolled back
    assert read_manifest(root, "events")["params"]["source"] == "demo"
    assert leftovers(root) == []


def test_a_stage_the_failed_build_created_is_removed(tmp_path, monkeypatch):
    """A first build that fails half-way leaves no stage at all rather than events without aggregates."""
    stages = [s if s.name != "rules" else StageSpec("rules", f"{__name__}:failing_rules")
              for s in build_module.STAGES]
    monkeypatch.setattr(build_module, "STAGES", stages)
    root = tmp_path / "art"
    with pytest.raises(RuntimeError):
        build(root, demo_events=EVENTS, seed=3, only=["aggregates", "rules"])
    assert sorted(p.name for p in root.iterdir()) == ["raw"]     # the generated demo CSV is an input, kept


KILLER = """
import os, signal, sys
from recsys import build as b, journal as a
point = sys.argv[3]
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if point in ("aggregates", "rules"):      # when that stage starts: the stages before it are already new
    b.STAGES = [s if s.name != point else b.StageSpec(point, "__main__:die") for s in b.STAGES]
else:                                     # between the two renames that swap the aggregates stage in
    swap = a._journal_replace
    def half(journal, final, tmp):
        if final.name == "aggregates":
            final.rename(journal / final.name)
            die()
        swap(journal, final, tmp)
    a._journal_replace = half
b.build(sys.argv[1], demo_events=int(sys.argv[2]), seed=4, only=["aggregates", "rules"])
"""


@pytest.mark.parametrize("point", ["aggregates", "rules", "mid-rename"])
def test_a_killed_build_is_rolled_back_by_the_next_one(first_set, point):
    root, before = first_set
    proc = subprocess.run([sys.executable, "-c", KILLER, str(root), str(EVENTS), point], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert snapshot(root) != before                        # killed with part of the new set in place
    assert [n for n in leftovers(root) if n.startswith(".build-")]
    summary = build(root, demo_events=EVENTS, seed=3, only=["aggregates", "rules"])  # the next build
    assert not any(v["built"] for v in summary.values())  # rolled back first: the previous set is whole
    assert snapshot(root) == before and leftovers(root) == []


def test_recovery_reports_what_it_put_back(first_set):
    root, before = first_set
    subprocess.run([sys.executable, "-c", KILLER, str(root), str(EVENTS), "rules"], cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert recover_interrupted_builds(root) == ["aggregates", "events"]
    assert snapshot(root) == before and leftovers(root) == []


def test_a_live_builds_journal_is_left_alone(first_set):
    """Another process's build still running owns its journal: recovery must not undo its work."""
    root, before = first_set
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        journal = root / f".build-{live.pid}-abc"
        journal.mkdir()
        (journal / "created-extra").touch()
        (root / "extra").mkdir()
        assert recover_interrupted_builds(root) == []
        assert journal.exists() and (root / "extra").exists()
    finally:
        live.kill()
        live.wait()
    assert recover_interrupted_builds(root) == ["extra"] and not (root / "extra").exists()
    assert snapshot(root) == before


def test_the_demo_csv_is_verified_before_reuse(tmp_path):
    path = build_demo_input(tmp_path, events=EVENTS, seed=3)
    good = path.read_bytes()
    with open(path, "r+b") as f:                           # a truncated CSV (a build killed while copying...)
        f.truncate(len(good) // 2)
    assert build_demo_input(tmp_path, events=EVENTS, seed=3).read_bytes() == good


def test_a_copy_without_timestamps_stays_up_to_date(first_set, tmp_path):
    """`cp -r` gives every file a new mtime; the demo CSV is identified by its recorded hash, not its mtime."""
    root, before = first_set
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, copy_function=shutil.copyfile)
    summary = build(copy, demo_events=EVENTS, seed=3, only=["aggregates", "rules"])
    assert not any(v["built"] for v in summary.values())
    assert snapshot(copy) == before
