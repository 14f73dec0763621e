"""A ``beside`` stage (the evaluation) runs in a second process while the build runs the others: it lands in the
same transaction, its errors come back as they were raised, and the build gives the same artifacts as one that
runs every stage in turn.

The stages here are tiny stand-ins (this module's functions, imported by the second process) after the real
events stage of a 4,000-event demo store; the full demo build runs the real evaluation beside the model stage.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from recsys import build as build_module
from recsys.artifacts import DamagedStage, StageNotBuilt, read_manifest
from recsys.journal import StageResult, run_stage
from recsys.build import StageSpec, build

EVENTS = 4000
pytestmark = pytest.mark.slow  # each test builds a demo events stage and starts a second Python process


def _stage(root, name: str, *, force: bool, progress, body=None):
    def fn(tmp: Path, prog):
        for f in (0.25, 0.5, 1.0):
            prog(f, f"{name} {f:.2f}")
        if body is not None:
            body()
        (tmp / "pid.txt").write_text(str(os.getpid()))
        return StageResult(rows={"x": 1}, params={})
    return run_stage(root, name, fn, input_fingerprint=f"{name}-v1", force=force, progress=progress)


def main_stage(root, *, force: bool, progress):
    time.sleep(0.5)  # long enough for the second process to be running meanwhile
    return _stage(root, "main", force=force, progress=progress)


def beside_stage(root, *, force: bool, progress):
    return _stage(root, "side", force=force, progress=progress)


def beside_value_error(root, *, force: bool, progress):
    def fail():
        raise ValueError("the store has no buyers: use a longer window")
    return _stage(root, "side", force=force, progress=progress, body=fail)


def beside_damaged(root, *, force: bool, progress):
    def fail():
        raise DamagedStage("events", "events/events.parquet is missing")
    return _stage(root, "side", force=force, progress=progress, body=fail)


def beside_killed(root, *, force: bool, progress):
    return _stage(root, "side", force=force, progress=progress, body=lambda: os.kill(os.getpid(), signal.SIGKILL))


def use(monkeypatch, beside_target: str) -> None:
    monkeypatch.setattr(build_module, "STAGES", [
        StageSpec("main", f"{__name__}:main_stage"),
        StageSpec("side", f"{__name__}:{beside_target}", beside=True),
    ])


def test_a_beside_stage_runs_in_its_own_process_inside_the_build(tmp_path, monkeypatch):
    use(monkeypatch, "beside_stage")
    seen: list[tuple[float, str]] = []
    summary = build(tmp_path, demo_events=EVENTS, seed=3, progress=lambda f, m: seen.append((f, m)))
    assert list(summary) == ["events", "main", "side"] and all(v["built"] for v in summary.values())
    main_pid = int((tmp_path / "main" / "pid.txt").read_text())
    side_pid = int((tmp_path / "side" / "pid.txt").read_text())
    assert main_pid == os.getpid() and side_pid != os.getpid()
    assert read_manifest(tmp_path, "side")["input_fingerprint"] == "side-v1"
    fractions = [f for f, _ in seen]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions[-1] == 1.0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith((".build-", ".tmp-"))]
    again = build(tmp_path, demo_events=EVENTS, seed=3)  # up to date, the second process says so too
    assert not any(v["built"] for v in again.values())


def test_turned_off_it_runs_in_this_process(tmp_path, monkeypatch):
    use(monkeypatch, "beside_stage")
    monkeypatch.setenv("RECSYS_BUILD_PARALLEL", "0")
    build(tmp_path, demo_events=EVENTS, seed=3)
    assert int((tmp_path / "side" / "pid.txt").read_text()) == os.getpid()


def test_above_the_size_limit_it_runs_in_this_process(tmp_path, monkeypatch):
    use(monkeypatch, "beside_stage")
    monkeypatch.setattr(build_module, "BESIDE_MAX_EVENTS", 100)  # the demo store has ~4,000
    build(tmp_path, demo_events=EVENTS, seed=3)
    assert int((tmp_path / "side" / "pid.txt").read_text()) == os.getpid()


@pytest.mark.parametrize("target,kind,text", [
    ("beside_value_error", ValueError, "the store has no buyers: use a longer window"),
    ("beside_damaged", DamagedStage, "the events stage is damaged (events/events.parquet is missing)"),
    ("beside_killed", RuntimeError, "was killed by signal 9"),
])
def test_its_failure_is_raised_here_and_the_whole_build_rolls_back(tmp_path, monkeypatch, target, kind, text):
    use(monkeypatch, "beside_stage")
    build(tmp_path, demo_events=EVENTS, seed=3)
    before = {p.name: (tmp_path / p.name / "manifest.json").read_bytes()
              for p in tmp_path.iterdir() if (p / "manifest.json").exists()}
    use(monkeypatch, target)
    with pytest.raises(kind) as err:
        build(tmp_path, demo_events=EVENTS, seed=4, force=True)  # new events, a new main stage, then the failure
    assert text in str(err.value)
    after = {p.name: (tmp_path / p.name / "manifest.json").read_bytes()
             for p in tmp_path.iterdir() if (p / "manifest.json").exists()}
    assert after == before  # the previous complete set, every stage of it
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".build-")]


def main_failing(root, *, force: bool, progress):
    time.sleep(0.5)
    raise RuntimeError("main stage failed on purpose")


def beside_slow(root, *, force: bool, progress):
    return _stage(root, "side", force=force, progress=progress, body=lambda: time.sleep(120))


def test_when_this_process_fails_the_second_one_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "STAGES", [StageSpec("main", f"{__name__}:main_failing"),
                                                 StageSpec("side", f"{__name__}:beside_slow", beside=True)])
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="on purpose"):
        build(tmp_path, demo_events=EVENTS, seed=3)
    assert time.monotonic() - t0 < 60  # not waiting for the side stage's two minutes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # nothing half-written either


def test_the_projects_own_errors_survive_the_trip_between_processes():
    """Exceptions whose __init__ takes other arguments than their message pickle through ``__reduce__``: a
    DamagedStage did not unpickle at all, a StageNotBuilt came back with its message inside its message."""
    import pickle
    for exc in (DamagedStage("events", "events/events.parquet is missing"), StageNotBuilt("model")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.stage == exc.stage
