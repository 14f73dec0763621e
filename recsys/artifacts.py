"""Artifact directories: where each stage lives, atomic writes, manifests and fingerprints.

A stage writes into ``<root>/.tmp-<stage>-<random>/`` and is renamed to ``<root>/<stage>/`` only when complete,
so a crash or a bad input never leaves a half-written stage and never destroys the previous good one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

MANIFEST = "manifest.json"
DEFAULT_ROOT = "artifacts"


class ArtifactError(RuntimeError):
    """An artifact directory is missing, incomplete or unreadable; the message says what to do."""


def artifacts_root(root: str | os.PathLike | None = None) -> Path:
    """The artifacts directory: the argument, else ``$RECSYS_ARTIFACTS``, else ``artifacts/``."""
    return Path(root or os.environ.get("RECSYS_ARTIFACTS") or DEFAULT_ROOT)


def stage_dir(root: str | os.PathLike | None, stage: str) -> Path:
    """Directory of a built stage (may not exist)."""
    return artifacts_root(root) / stage


def read_manifest(root: str | os.PathLike | None, stage: str) -> dict[str, Any] | None:
    """The stage's manifest, or None when the stage was never built."""
    path = stage_dir(root, stage) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is unreadable ({exc}); rebuild with `python -m recsys build`") from exc


def require_stage(root: str | os.PathLike | None, stage: str) -> Path:
    """The directory of a complete stage, or ArtifactError saying how to build it."""
    if read_manifest(root, stage) is None:
        raise ArtifactError(
            f"stage '{stage}' is not built in {artifacts_root(root)}; run `python -m recsys build "
            f"--artifacts {artifacts_root(root)}`")
    return stage_dir(root, stage)


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (parameters, upstream fingerprints)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_fingerprint(paths: list[Path]) -> str:
    """Fingerprint of input files from path, size, mtime and a hash of their first and last MiB."""
    parts = []
    for p in paths:
        st = p.stat()
        h = hashlib.sha256()
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
            if st.st_size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
        parts.append([str(p.resolve()), st.st_size, st.st_mtime_ns, h.hexdigest()])
    return fingerprint(parts)


def upstream_fingerprint(root: str | os.PathLike | None, stages: list[str], params: Any) -> str:
    """Fingerprint of a derived stage: its upstream stages' fingerprints plus its own parameters."""
    ups = []
    for name in stages:
        m = read_manifest(root, name)
        if m is None:
            raise ArtifactError(f"stage '{name}' must be built first; run `python -m recsys build`")
        ups.append([name, m.get("input_fingerprint"), m.get("built_at")])
    return fingerprint([ups, params])


def _pid_alive(pid: int) -> bool:
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
            if pid.isdigit() and _pid_alive(int(pid)):
                continue
            if kind == ".old" and not (base / stage).exists() and path.is_dir():
                path.rename(base / stage)  # the last complete build of this stage
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_stage(root: str | os.PathLike | None, stage: str) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``<root>/<stage>``, on error it is removed."""
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
    old = base / f".old-{stage}-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str))
    tmp.replace(path)


Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores updates."""


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

    Returns (manifest, built) where built is False when the stage was skipped as up to date.
    """
    old = read_manifest(root, stage)
    if old is not None and old.get("input_fingerprint") == input_fingerprint and not force:
        progress(1.0, f"{stage}: up to date")
        return old, False
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
    """File sizes plus the column schema of every Parquet file in a stage directory."""
    out: dict[str, Any] = {}
    for p in sorted(directory.rglob("*")):
        if not p.is_file() or p.name == MANIFEST:
            continue
        entry: dict[str, Any] = {"bytes": p.stat().st_size}
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq
            schema = pq.read_schema(p)
            entry["schema"] = {f.name: str(f.type) for f in schema}
        out[str(p.relative_to(directory))] = entry
    return out


# ---- the cleaned events, for every consumer -------------------------------------------------------------

EVENTS_STAGE = "events"
EVENTS_FILE = "events.parquet"


def events_path(root: str | os.PathLike | None = None) -> Path:
    """Path of the cleaned events Parquet; ArtifactError if the events stage is not built."""
    path = require_stage(root, EVENTS_STAGE) / EVENTS_FILE
    if not path.exists():
        raise ArtifactError(f"{path} is missing; rebuild with `python -m recsys build`")
    return path


def connect(root: str | os.PathLike | None = None, *, threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB connection with a view ``events`` over the cleaned events (one per thread)."""
    path = events_path(root)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # hour-of-day and day buckets are UTC everywhere
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({sql_literal(path)})")
    return con


def sql_literal(value: Path | str) -> str:
    """``value`` (a path, usually) as a single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"
