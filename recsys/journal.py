"""Writing stages so that nothing already built is lost: each stage atomically, and a whole build as one unit.

A stage writes into ``<root>/.tmp-<stage>-<pid>-<random>/`` and is renamed to ``<root>/<stage>/`` only when
complete (``atomic_stage``), so a crash or a bad input never leaves a half-written stage and never destroys the
previous good one. ``run_stage`` does that around a stage function, records the manifest
(``recsys.artifacts``' checks read it) and skips a stage whose inputs and files are unchanged. A build's stages
run inside ``build_transaction``: the journal keeps every stage it replaced until the whole build completes, so a
later stage's failure, or a killed build, puts the previous complete set back.
"""
from __future__ import annotations

import contextlib
import contextvars
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.artifacts import (HASH, MANIFEST, ArtifactError, DamagedStage, Progress, artifacts_root, check_files,
                              file_hash, no_progress, read_manifest, write_json)

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id is running (a build's temporary folders are named by its pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_leftovers(base: Path, stage: str) -> list[Path]:
    """Remove ``.tmp-<stage>-<pid>-*`` / ``.old-<stage>-<pid>`` folders of builds that are no longer running (a
    killed build leaves them); a build still running keeps its own. Names without a pid (older versions) count as
    left over. When the stage folder itself is missing because a build died between its two renames, the previous
    complete stage (``.old-``) is put back first. Returns what was removed."""
    removed = []
    for kind in (".old", ".tmp"):
        for path in sorted(base.glob(f"{kind}-{stage}-*")):
            rest = path.name[len(f"{kind}-{stage}-"):]
            pid = rest.split("-", 1)[0]
            if pid.isdigit() and pid_alive(int(pid)):
                continue
            if kind == ".old" and not (base / stage).exists() and path.is_dir():
                path.rename(base / stage)  # the last complete build of this stage
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_stage(root: str | os.PathLike | None, stage: str) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``<root>/<stage>``, on error it is removed.

    Inside a ``build_transaction`` the replaced stage is kept in the build's journal (not deleted) until the
    whole build completes, so a later stage's failure can put the previous complete set back."""
    base = artifacts_root(root)
    base.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(base, stage)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{stage}-{os.getpid()}-", dir=base))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = base / stage
    journal = _JOURNAL.get(None)
    if journal is not None and journal.parent.resolve() == base.resolve():
        _journal_replace(journal, final, tmp)
        return
    old = base / f".old-{stage}-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


# --- whole-build transactions --------------------------------------------------------------------------------
# A build replaces stages one by one; if stage 4 fails, stages 1-3 are already new. The journal
# (``<root>/.build-<pid>-<random>/``) keeps every stage the build replaced, and a ``created-<stage>`` marker for
# every stage it added, so the build can leave either its new complete set or the previous one. A build that is
# killed leaves its journal behind; the next build (or ``recover_interrupted_builds``) rolls it back first.
_JOURNAL: contextvars.ContextVar[Path] = contextvars.ContextVar("recsys_build_journal")
JOURNAL_PREFIX = ".build-"


def _journal_replace(journal: Path, final: Path, tmp: Path) -> None:
    """Swap ``tmp`` in as ``final``; the previous ``final`` goes to the journal (the first one only)."""
    kept = journal / final.name
    created = journal / f"created-{final.name}"
    if final.exists():
        if kept.exists() or created.exists():  # replaced twice in one build: the journal keeps the oldest
            shutil.rmtree(final)
        else:
            final.rename(kept)
    elif not kept.exists():
        created.touch()
    tmp.rename(final)


def _rollback(journal: Path) -> list[str]:
    """Put back every stage the journal holds and remove the stages the build created; returns their names."""
    base, restored = journal.parent, []
    for marker in sorted(journal.glob("created-*")):
        stage = marker.name[len("created-"):]
        shutil.rmtree(base / stage, ignore_errors=True)
        restored.append(stage)
    for kept in sorted(p for p in journal.iterdir() if p.is_dir()):
        if (base / kept.name).exists():
            shutil.rmtree(base / kept.name)
        kept.rename(base / kept.name)
        restored.append(kept.name)
    shutil.rmtree(journal, ignore_errors=True)
    return sorted(restored)


def recover_interrupted_builds(root: str | os.PathLike | None) -> list[str]:
    """Roll back the journals of builds that are no longer running (killed, power cut): the stages they had
    replaced come back, so the directory holds the last complete set again. Returns the stages put back."""
    base = artifacts_root(root)
    restored: list[str] = []
    if not base.is_dir() or not any(base.glob(f"{JOURNAL_PREFIX}*")):
        return restored
    # several readers may find the same journal at once (app sessions, API workers): one rolls it back
    with open(base / ".recover.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for journal in sorted(base.glob(f"{JOURNAL_PREFIX}*")):
            restored += _rollback_if_dead(journal)
    return restored


def _rollback_if_dead(journal: Path) -> list[str]:
    pid = journal.name[len(JOURNAL_PREFIX):].split("-", 1)[0]
    if not journal.is_dir() or (pid.isdigit() and pid_alive(int(pid))):
        return []  # a build still running (this process's other threads included): its journal is its own
    back = _rollback(journal)
    log.warning("an interrupted build was rolled back: %s put back", ", ".join(back) or "nothing")
    return back


@contextlib.contextmanager
def build_transaction(root: str | os.PathLike | None) -> Iterator[Path]:
    """Run several stages as one unit: on success the new stages stay; on any error (or if the process dies,
    at the next build) every stage is put back as it was before. Yields the journal directory."""
    base = artifacts_root(root)
    base.mkdir(parents=True, exist_ok=True)
    recover_interrupted_builds(base)
    journal = Path(tempfile.mkdtemp(prefix=f"{JOURNAL_PREFIX}{os.getpid()}-", dir=base))
    try:
        with join_transaction(journal):
            yield journal
    except BaseException:
        restored = _rollback(journal)
        if restored:
            log.warning("build failed: the previous %s put back", ", ".join(restored))
        raise
    shutil.rmtree(journal, ignore_errors=True)


@contextlib.contextmanager
def join_transaction(journal: Path) -> Iterator[None]:
    """Stages written inside go into ``journal``: the build's own, or, in a build's second process, the parent's,
    so the parent's commit or rollback covers them too (the parent waits for that process before either)."""
    if not journal.is_dir():
        raise ArtifactError(f"the build's journal {journal} is gone: the build that started this stage has ended")
    token = _JOURNAL.set(journal)
    try:
        yield
    finally:
        _JOURNAL.reset(token)




@dataclass
class StageResult:
    """What a stage function returns: facts for its manifest."""
    rows: dict[str, int]
    params: dict[str, Any]
    extra: dict[str, Any] | None = None


def run_stage(root: str | os.PathLike | None, stage: str, fn: Callable[[Path, Progress], StageResult], *,
              input_fingerprint: str, seed: int | None = None, force: bool = False,
              progress: Progress = no_progress) -> tuple[dict[str, Any], bool]:
    """Build one stage atomically unless its manifest already has ``input_fingerprint``.

    The stage counts as up to date only when its files still have the sizes and hashes its manifest recorded;
    otherwise it is rebuilt, and the log says which file failed. Returns (manifest, built) where built is False
    when the stage was skipped as up to date.
    """
    base = artifacts_root(root)
    if base.is_dir():
        sweep_leftovers(base, stage)  # first: it may put back a stage that a killed build had moved aside
    try:
        old, problem = read_manifest(root, stage), None
    except DamagedStage as exc:
        old, problem = None, exc.problem
    if old is not None and old.get("input_fingerprint") == input_fingerprint and not force:
        problem = check_files(root, stage, old, hashes=True)
        if problem is None:
            progress(1.0, f"{stage}: up to date")
            return old, False
    if problem:
        log.warning("stage %s is damaged (%s): rebuilding it", stage, problem)
        progress(0.0, f"{stage}: damaged, rebuilding")
    t0 = time.perf_counter()
    with atomic_stage(root, stage) as tmp:
        result = fn(tmp, progress)
        manifest = {
            "stage": stage,
            "input_fingerprint": input_fingerprint,
            "seed": seed,
            "params": result.params,
            "rows": result.rows,
            "files": _describe_files(tmp),
            "duration_s": round(time.perf_counter() - t0, 3),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(result.extra or {}),
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest, True


def _describe_files(directory: Path) -> dict[str, Any]:
    """Size and hash of every file in a stage directory, plus the column schema of every Parquet file."""
    out: dict[str, Any] = {}
    for p in sorted(directory.rglob("*")):
        if not p.is_file() or p.name == MANIFEST:
            continue
        entry: dict[str, Any] = {"bytes": p.stat().st_size, HASH: file_hash(p)}
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq
            schema = pq.read_schema(p)
            entry["schema"] = {f.name: str(f.type) for f in schema}
        out[str(p.relative_to(directory))] = entry
    return out
