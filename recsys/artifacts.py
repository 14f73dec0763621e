"""Artifact directories: where each stage lives, its manifest, the checks before a stage is trusted, fingerprints.

Every stage is one folder ``<root>/<stage>/`` with a ``manifest.json`` recording the size and SHA-256 of every file
it wrote (``recsys.journal.run_stage`` writes stages, atomically). Loaders (``require_stage``) check the sizes, a
few ``stat`` calls; ``run_stage`` checks sizes and hashes before it calls a stage up to date and rebuilds it when
they differ. SHA-256 rather than blake2b: OpenSSL's uses the CPU's SHA instructions, 0.7-0.9 GB/s on one core here
against 0.4-0.55 GB/s for blake2b (measured on the 69 MB of the default demo build).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

MANIFEST = "manifest.json"
DEFAULT_ROOT = "artifacts"
HASH = "sha256"
HASH_SIDECAR = ".recsys-sha256"  # a generated input's own hash, written beside it
BUILD_COMMAND = "python -m recsys build"
PREFETCH_CHUNK = 2 << 20  # bytes per readahead request

log = logging.getLogger(__name__)


class ArtifactError(RuntimeError):
    """An artifact directory is missing, incomplete or unreadable; the message says what to do."""


class StageNotBuilt(ArtifactError):
    """A stage has no manifest. The message names no path, so the API can show it as it is."""

    def __init__(self, stage: str):
        super().__init__(f"the {stage} stage is not built; run `{BUILD_COMMAND}`")
        self.stage = stage

    def __reduce__(self):  # pickled (a build's second process sends its error back): rebuilt from the stage name
        return type(self), (self.stage,)


class DamagedStage(ArtifactError):
    """A built stage whose files do not match its manifest; ``problem`` names the file relative to the artifacts
    directory (``model/model.pt is missing``), never an absolute path or a library's exception text."""

    def __init__(self, stage: str, problem: str):
        super().__init__(f"the {stage} stage is damaged ({problem}); run `{BUILD_COMMAND}`")
        self.stage, self.problem = stage, problem

    def __reduce__(self):
        return type(self), (self.stage, self.problem)


def artifacts_root(root: str | os.PathLike | None = None) -> Path:
    """The artifacts directory: the argument, else ``$RECSYS_ARTIFACTS``, else ``artifacts/``."""
    return Path(root or os.environ.get("RECSYS_ARTIFACTS") or DEFAULT_ROOT)


def stage_dir(root: str | os.PathLike | None, stage: str) -> Path:
    """Directory of a built stage (may not exist)."""
    return artifacts_root(root) / stage


def read_manifest(root: str | os.PathLike | None, stage: str) -> dict[str, Any] | None:
    """The stage's manifest, or None when the stage was never built; DamagedStage when it is unreadable."""
    path = stage_dir(root, stage) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bytes that are not UTF-8
        log.debug("%s: %s", path, exc)
        raise DamagedStage(stage, f"{stage}/{MANIFEST} is unreadable") from exc
    if not isinstance(manifest, dict):
        raise DamagedStage(stage, f"{stage}/{MANIFEST} is unreadable")
    return manifest


def require_stage(root: str | os.PathLike | None, stage: str, files: list[str] | tuple[str, ...] | None = None) -> Path:
    """The directory of a built stage whose files (or just ``files``, names inside the stage) have the sizes its
    manifest recorded; StageNotBuilt or DamagedStage (naming the file) otherwise."""
    manifest = read_manifest(root, stage)
    if manifest is None:
        raise StageNotBuilt(stage)
    problem = check_files(root, stage, manifest, files=files)
    if problem:
        raise DamagedStage(stage, problem)
    return stage_dir(root, stage)


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (streamed)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, HASH).hexdigest()


def check_files(root: str | os.PathLike | None, stage: str, manifest: dict[str, Any], *, hashes: bool = False,
                files: list[str] | tuple[str, ...] | None = None) -> str | None:
    """What is wrong with a stage's files against its manifest (a file missing, another size, with ``hashes``
    other bytes), as a phrase naming the file relative to the artifacts directory; None when they match.
    Manifests written before hashes were recorded are checked on sizes."""
    d = stage_dir(root, stage)
    recorded = manifest.get("files") or {}
    if not isinstance(recorded, dict) or not all(isinstance(e, dict) for e in recorded.values()):
        return f"{stage}/{MANIFEST} is unreadable"
    for name in (recorded if files is None else [f for f in files if f in recorded]):
        entry, path, shown = recorded[name], d / name, f"{stage}/{name}"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"{shown} is missing"
        except OSError:
            return f"{shown} is unreadable"
        if "bytes" in entry and size != entry["bytes"]:
            return f"{shown} has {size:,} bytes, the build wrote {entry['bytes']:,}"
        if hashes and HASH in entry:
            try:
                if file_hash(path) != entry[HASH]:
                    return f"{shown} was changed since the build wrote it"
            except OSError:
                return f"{shown} is unreadable"
    return None


def stage_problem(root: str | os.PathLike | None, stage: str, *, hashes: bool = True) -> ArtifactError | None:
    """Why a stage cannot be used (StageNotBuilt or DamagedStage), checking hashes too; None when it checks out.
    For explaining a load that failed: a file can keep its size and still be garbage."""
    try:
        manifest = read_manifest(root, stage)
    except DamagedStage as exc:
        return exc
    if manifest is None:
        return StageNotBuilt(stage)
    problem = check_files(root, stage, manifest, hashes=hashes)
    return DamagedStage(stage, problem) if problem else None


def diagnose(root: str | os.PathLike | None, stages: tuple[str, ...] | list[str],
             exc: BaseException) -> ArtifactError | None:
    """Why loading from ``stages`` raised ``exc``, as a message fit for a user: ``exc`` itself when it already says
    (StageNotBuilt, DamagedStage), else the first stage that is not built or fails its size and hash check. None
    when they all check out: then the files are as built and the fault is elsewhere."""
    if isinstance(exc, (StageNotBuilt, DamagedStage)):
        return exc
    return next((p for p in (stage_problem(root, s) for s in stages) if p is not None), None)


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (parameters, upstream fingerprints)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_fingerprint(paths: list[Path]) -> str:
    """Fingerprint of input files from name, size, mtime and a hash of their first and last MiB. The name, not the
    path: an artifacts directory that is moved or copied (the demo CSV lives inside it) stays up to date. A file
    with a ``<name>.recsys-sha256`` beside it (the demo CSV, verified before use) is identified by that hash instead."""
    parts = []
    for p in paths:
        st = p.stat()
        recorded = p.with_name(p.name + HASH_SIDECAR)  # the demo CSV's verified hash: `cp -r` changes mtimes
        if recorded.is_file():
            parts.append([p.name, st.st_size, recorded.read_text().strip()])
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
            if st.st_size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read())
        parts.append([p.name, st.st_size, st.st_mtime_ns, h.hexdigest()])
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


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str))
    tmp.replace(path)


def save_arrays(directory: Path, arrays: dict[str, np.ndarray]) -> None:
    """Numeric arrays as one ``<name>.npy`` each under ``directory`` (a stage's temporary directory: the stage's
    rename makes them visible), so that ``load_arrays`` can memory-map them."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype == object:
            raise TypeError(f"{name}: object arrays cannot be memory-mapped")
        np.save(directory / f"{name}.npy", a, allow_pickle=False)


def load_arrays(directory: Path, mmap: bool = True, legacy_npz: Path | None = None) -> dict[str, np.ndarray]:
    """``save_arrays``'s arrays, memory-mapped read-only by default: opening costs the headers, and a served call
    reads only the pages it touches (a multi-GB serving state opens in milliseconds, and processes share it).
    A truncated or damaged file raises ValueError naming it. Without ``directory``, the ``legacy_npz`` an older
    build wrote in its place is read whole."""
    if legacy_npz is not None and not directory.is_dir():
        with np.load(legacy_npz) as z:
            return {k: z[k] for k in z.files}
    out = {}
    for path in sorted(directory.glob("*.npy")):
        try:
            a = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise ValueError(f"{path} is damaged ({exc}): rebuild with python -m recsys build") from exc
        # a plain read-only ndarray over the mapping: np.memmap's Python-level __getitem__ and __array_finalize__
        # cost ~2 us per index (a served call indexes the state ~45 times) and make every result a memmap too
        out[path.stem] = a.view(np.ndarray) if isinstance(a, np.memmap) else a
    return out


def prefetch(directories: Iterable[Path], budget_fraction: float = 0.5) -> list[Path]:
    """Ask the kernel to read the memory-mapped ``.npy`` files of ``directories`` into the page cache, in a
    background thread, smallest first (``posix_fadvise(WILLNEED)``: it neither blocks the caller nor counts as
    the process's memory). A served call touches a few pages of each multi-GB array; on a cold cache each is a
    disk read: on the Oct+Nov state (10 GB) after dropping the page cache, the first 300 calls measured p99 167 ms
    without this and 12 ms with it (``benchmarks/cold_calls.py``); the whole state is read in about 12 s.
    Skipped (returns []) when the files exceed ``budget_fraction`` of the memory available now, or where the OS
    has no fadvise. Returns the files advised, in order."""
    sized = sorted((f.stat().st_size, f.name, f) for d in directories if Path(d).is_dir()
                   for f in Path(d).glob("*.npy"))
    files = [f for _, _, f in sized]
    advise = getattr(os, "posix_fadvise", None)
    if not files or advise is None or sum(n for n, _, _ in sized) > budget_fraction * _available_bytes():
        return []

    def run() -> None:
        for f in files:
            try:
                fd = os.open(f, os.O_RDONLY)
                try:  # chunk by chunk: Linux reads at most its readahead window (a few MB) per call
                    for start in range(0, os.fstat(fd).st_size, PREFETCH_CHUNK):
                        advise(fd, start, PREFETCH_CHUNK, os.POSIX_FADV_WILLNEED)
                finally:
                    os.close(fd)
            except OSError:  # a file replaced by a rebuild meanwhile: the next load advises the new one
                continue

    threading.Thread(target=run, name="recsys-prefetch", daemon=True).start()
    return files


def _available_bytes() -> int:
    """Memory available to new page cache (MemAvailable on Linux; 0 where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores updates."""


# ---- the cleaned events, for every consumer -------------------------------------------------------------

EVENTS_STAGE = "events"
EVENTS_FILE = "events.parquet"


def events_path(root: str | os.PathLike | None = None) -> Path:
    """Path of the cleaned events Parquet; ArtifactError if the events stage is not built."""
    path = require_stage(root, EVENTS_STAGE, files=[EVENTS_FILE]) / EVENTS_FILE
    if not path.exists():
        raise DamagedStage(EVENTS_STAGE, f"{EVENTS_STAGE}/{EVENTS_FILE} is missing")
    return path


def connect(root: str | os.PathLike | None = None, *, threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB connection with a view ``events`` over the cleaned events (one per thread). Use it as a
    context manager (``with connect(root) as con:``) so it closes on the way out; it is closed here when a setting
    fails."""
    path = events_path(root)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # hour-of-day and day buckets are UTC everywhere
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({sql_literal(path)})")
    except BaseException:
        con.close()
        raise
    return con


def sql_literal(value: Path | str) -> str:
    """``value`` (a path, usually) as a single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"
