"""Artifact sets on this machine and building new ones from a data folder (the library of the app's Data page).

Where things are (each a setting, read when called):

- the **default set**: ``$RECSYS_ARTIFACTS``, else ``artifacts/`` (what the app serves unless a session picks
  another set); when ``$RECSYS_ARTIFACTS`` points elsewhere, a built ``artifacts/`` is listed too;
- **stores**: every subdirectory of ``$RECSYS_STORES``, else of ``<default set>/stores/``, is one set, named by
  its folder (``stores/<name>/events/...``, the same layout as ``artifacts/``);
- the **data folder**: ``$RECSYS_DATA_DIR``, else ``data/`` in the repository. Only files inside it can be built
  (.csv, .csv.gz, .zip, .xlsx, .xlsm); names are relative to it, and absolute paths, ``..`` and symlinks that lead
  out of it are refused. Uploads are saved into it under a safe file name.

A new set is built into a temporary folder next to its final place and renamed into place only when every stage
is built, so a failed or interrupted build leaves no half set behind.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, BinaryIO

from recsys.artifacts import ArtifactError, Progress, artifacts_root, no_progress, read_manifest, stage_problem
from recsys.journal import pid_alive

REPO = Path(__file__).resolve().parents[1]
STORES_ENV, DATA_ENV = "RECSYS_STORES", "RECSYS_DATA_DIR"
INPUT_SUFFIXES = (".csv", ".csv.gz", ".zip", ".xlsx", ".xlsm")
MAX_UPLOAD_MB = 200  # the page's st.file_uploader limit (server.maxUploadSize in .streamlit/config.toml)
TMP_PREFIX = ".building-"
_SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class DatasetError(ValueError):
    """A request the Data page cannot carry out (a bad name, a path outside the data folder); says what to fix."""


def stage_names() -> list[str]:
    """Every stage of a complete set, in build order."""
    from recsys.build import STAGES
    return ["events"] + [s.name for s in STAGES]


def default_root() -> Path:
    """The default set: ``$RECSYS_ARTIFACTS`` or ``artifacts/``."""
    return artifacts_root(None)


def stores_dir() -> Path:
    """Where built stores live: ``$RECSYS_STORES``, else ``<default set>/stores``."""
    return Path(os.environ.get(STORES_ENV) or default_root() / "stores")


def data_dir() -> Path:
    """The folder whose files can be built: ``$RECSYS_DATA_DIR``, else ``data/`` in the repository."""
    return Path(os.environ.get(DATA_ENV) or REPO / "data")


# ---- listing the sets -----------------------------------------------------------------------------------------

@dataclass
class ArtifactSet:
    """One artifacts directory and what its manifests say about it."""
    name: str
    path: Path
    kind: str                       # "default", "artifacts" (artifacts/ beside a $RECSYS_ARTIFACTS) or "store"
    source: str | None = None       # "demo" or "files" (None: events not built)
    fmt: str | None = None          # rees46, uci, retailrocket
    files: list[str] = field(default_factory=list)
    events: int | None = None
    first_event: str | None = None
    last_event: str | None = None
    built_at: str | None = None
    stages: dict[str, str | None] = field(default_factory=dict)  # stage -> problem (None: built and verified)

    @property
    def complete(self) -> bool:
        """Every stage built and matching its manifest."""
        return bool(self.stages) and all(p is None for p in self.stages.values())

    def row(self) -> dict[str, Any]:
        """A table row for the page (plain values)."""
        bad = {s: p for s, p in self.stages.items() if p is not None}
        return {"set": self.name, "source": "demo store" if self.source == "demo" else (self.fmt or "—"),
                "files": ", ".join(Path(f).name for f in self.files) if self.source == "files" else "",
                "events": self.events, "from": self.first_event, "to": self.last_event, "built": self.built_at,
                "stages": "all built and verified" if not bad else "; ".join(bad.values()), "path": str(self.path)}


def describe_set(path: Path, name: str, kind: str, *, hashes: bool = False) -> ArtifactSet:
    """What the manifests of ``path`` say: source, files, events, date span, last build, each stage's problem
    (``recsys.artifacts.stage_problem``: sizes always, file hashes too with ``hashes``)."""
    s = ArtifactSet(name=name, path=path, kind=kind)
    times = []
    for stage in stage_names():
        problem = stage_problem(path, stage, hashes=hashes)
        s.stages[stage] = None if problem is None else str(problem).split("; run `")[0]
        try:
            m = read_manifest(path, stage)
        except ArtifactError:
            m = None
        if m and m.get("built_at"):
            times.append(str(m["built_at"]))
        if stage == "events" and m:
            params = m.get("params") or {}
            s.source, s.fmt = params.get("source"), params.get("format", "rees46")
            s.files = [str(f) for f in params.get("files") or []]
            s.events = (m.get("rows") or {}).get("events")
    s.built_at = max(times) if times else None
    s.first_event, s.last_event = _date_span(path)
    return s


def _date_span(path: Path) -> tuple[str | None, str | None]:
    """First and last event day from the aggregates' stored KPIs (None when not built)."""
    try:
        k = json.loads((path / "aggregates" / "kpis.json").read_text())
        return str(k["first_event"])[:10], str(k["last_event"])[:10]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def set_locations() -> list[tuple[str, Path, str]]:
    """(name, path, kind) of every set: the default one, ``artifacts/`` when it is not the default but holds
    events, then each folder under the stores directory (sorted); a path is listed once."""
    out, seen = [], set()

    def add(name: str, path: Path, kind: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.append((name, path, kind))

    add(f"default ({default_root()})", default_root(), "default")
    plain = Path("artifacts")
    if (plain / "events").is_dir():
        add("artifacts/", plain, "artifacts")
    base = stores_dir()
    if base.is_dir():
        for d in sorted(base.iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                add(d.name, d, "store")
    return out


def list_sets(*, hashes: bool = False) -> list[ArtifactSet]:
    """Every set on this machine with its state (see :func:`set_locations`)."""
    return [describe_set(p, n, k, hashes=hashes) for n, p, k in set_locations()]


# ---- the data folder --------------------------------------------------------------------------------------------

def is_input_name(name: str) -> bool:
    return name.lower().endswith(INPUT_SUFFIXES)


def list_data_files(folder: Path | None = None) -> list[dict[str, Any]]:
    """Buildable files under the data folder (subfolders too; hidden ones and symlinks leading out skipped), as
    {"file": relative name, "MB": size, "modified": ISO time}, sorted by name."""
    folder = data_dir() if folder is None else folder
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not is_input_name(p.name):
            continue
        try:
            real = resolve_data_file(str(rel), folder)
        except DatasetError:
            continue
        st = real.stat()
        out.append({"file": rel.as_posix(), "MB": round(st.st_size / 1e6, 2),
                    "modified": _iso(st.st_mtime)})
    return out


def _iso(t: float) -> str:
    import time
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))


def resolve_data_file(name: str, folder: Path | None = None) -> Path:
    """The file ``name`` (relative to the data folder) as a real path inside it; DatasetError for an absolute
    path, ``..``, a symlink or anything else that resolves outside the folder, a missing file, another type."""
    folder = data_dir() if folder is None else folder
    text = str(name)
    if not text.strip() or "\x00" in text:
        raise DatasetError("no file named: pick a file of the data folder")
    rel = Path(text)
    if rel.is_absolute() or text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        raise DatasetError(f"{text}: only files inside the data folder can be built (give a name relative to it)")
    if ".." in rel.parts or ".." in text.replace("\\", "/").split("/"):
        raise DatasetError(f"{text}: '..' is not allowed; only files inside the data folder can be built")
    base = folder.resolve()
    real = (base / rel).resolve()
    if not real.is_relative_to(base):
        raise DatasetError(f"{text}: leads outside the data folder (a symlink?); only files inside it can be built")
    if not real.is_file():
        raise DatasetError(f"{text}: no such file in the data folder")
    if not is_input_name(real.name):
        raise DatasetError(f"{text}: not a data file ({', '.join(INPUT_SUFFIXES)})")
    return real


def safe_upload_name(name: str) -> str:
    """A file name for an upload: its last path part, unsafe characters replaced by '_', a known data suffix."""
    base = re.split(r"[\\/]", str(name))[-1].strip()
    suffix = next((s for s in INPUT_SUFFIXES if base.lower().endswith(s)), None)
    if suffix is None:
        raise DatasetError(f"{base[:80] or 'the file'}: not a data file; upload one of {', '.join(INPUT_SUFFIXES)}")
    stem = _UNSAFE_CHARS.sub("_", base[: len(base) - len(suffix)]).strip("._-")[:80] or "upload"
    return stem + suffix


def save_upload(name: str, data: BinaryIO | bytes, folder: Path | None = None) -> str:
    """Save an upload into the data folder under a safe, unused name (temp file + rename); returns that name."""
    folder = data_dir() if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    safe = safe_upload_name(name)
    suffix = next(s for s in INPUT_SUFFIXES if safe.lower().endswith(s))
    stem, target, n = safe[: len(safe) - len(suffix)], folder / safe, 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, bytearray)):
                f.write(data)
            else:
                shutil.copyfileobj(data, f, 1 << 22)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target.name


# ---- building a new set -----------------------------------------------------------------------------------------

def check_set_name(name: str, base: Path | None = None) -> Path:
    """The folder of a new set called ``name`` under the stores directory; DatasetError for a bad or taken name."""
    base = stores_dir() if base is None else base
    name = str(name).strip()
    if not _SET_NAME.fullmatch(name) or name in (".", ".."):
        raise DatasetError(f"'{name[:40]}' is not a set name: use 1-63 letters, digits, '-', '_' or '.', "
                           f"starting with a letter or digit")
    target = base / name
    if target.exists():
        raise DatasetError(f"a set named '{name}' already exists in {base}; pick another name")
    return target


def build_set(name: str, files: list[str], *, progress: Progress = no_progress,
              build: Callable[..., dict[str, Any]] | None = None) -> Path:
    """Build the data-folder ``files`` into a new set ``<stores>/<name>``: every stage into a temporary folder,
    renamed into place when all are built. On any error the temporary folder is removed and the error raised."""
    if not files:
        raise DatasetError("no file chosen: pick one or more files of the data folder")
    target = check_set_name(name)
    paths = [resolve_data_file(f) for f in files]
    if build is None:
        from recsys.build import build
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_builds(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-{target.name}-", dir=target.parent))
    try:
        build(tmp, paths, progress=progress)
        if target.exists():  # another session took the name meanwhile
            raise DatasetError(f"a set named '{target.name}' appeared while building; pick another name")
        tmp.rename(target)
        target.chmod(0o755)  # mkdtemp made it private; a set is as readable as artifacts/
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def sweep_builds(base: Path) -> list[str]:
    """Remove the temporary folders of builds whose process is gone (a server killed mid-build); returns them."""
    removed = []
    for d in sorted(base.glob(f"{TMP_PREFIX}*")):
        pid = d.name[len(TMP_PREFIX):].split("-", 1)[0]
        if d.is_dir() and not (pid.isdigit() and pid_alive(int(pid))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    return removed


def explain(exc: BaseException, artifacts: Path | None = None) -> str:
    """The CLI's one-line message for a failed build (``recsys.cli``): what to fix for a user error, else the
    kind of failure; never a traceback."""
    from recsys.errors import USER_ERRORS, one_line
    args = SimpleNamespace(artifacts=str(artifacts) if artifacts else None)
    if isinstance(exc, USER_ERRORS):
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return one_line(msg, args)
    return f"unexpected {type(exc).__name__} while building: {one_line(exc, args)}"
