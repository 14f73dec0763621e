"""Other stores' files -> the events stage: RetailRocket (``recsys.ingest.retailrocket``) and UCI Online Retail
(``recsys.ingest.uci``), detected from the header by ``recsys.ingest.formats.detect_format``; their mapping rules
are listed there. REES46 files (and anything unrecognised) go through ``recsys.ingest.reader``.

``build_adapted_events`` is the events stage for these formats (``recsys.ingest.stage.build_events`` calls it);
``load_product_names`` reads the product names a UCI store has, for every consumer.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from recsys import schema as S
from recsys.artifacts import (EVENTS_STAGE, ArtifactError, Progress, artifacts_root, check_files, file_fingerprint,
                              fingerprint, no_progress, read_manifest, stage_dir, write_json)
from recsys.journal import StageResult, run_stage
from recsys.ingest.formats import QUALITY_FILE, AdapterError, detect_format, retailrocket_files
from recsys.ingest.reader import unzip_members
from recsys.ingest.retailrocket import ingest_retailrocket
from recsys.ingest.uci import ITEM_NAMES_FILE, NAME_COLUMNS, ingest_uci

log = logging.getLogger(__name__)


def ingest_adapted(paths: list[Path], out_dir: Path, fmt: str, source: str = "files",
                   progress: Progress = no_progress) -> dict[str, Any]:
    """Map files of a detected non-REES46 format into ``out_dir``."""
    if fmt == "retailrocket":
        return ingest_retailrocket(paths, out_dir, source, progress)
    if fmt == "uci":
        return ingest_uci(paths, out_dir, source, progress)
    raise AdapterError(f"unknown store format {fmt!r}")


def build_adapted_events(root: str | os.PathLike | None, paths: list[Path], params: Any, *, force: bool = False,
                         progress: Progress = no_progress) -> tuple[dict, bool]:
    """The events stage for RetailRocket / UCI inputs (called by ``recsys.ingest.reader.build_events``)."""
    paths = [Path(p) for p in paths]
    fmt = detect_format(paths)
    files = paths
    if fmt == "retailrocket":
        ev, props, tree = retailrocket_files(paths)
        files = ev + props + tree
    fp = fingerprint([file_fingerprint(files), vars(params), fmt])

    def run(tmp: Path, prog: Progress) -> StageResult:
        with _unzipped(paths if fmt == "retailrocket" else [], artifacts_root(root) / "raw") as plain:
            report = ingest_adapted(plain or paths, tmp, fmt, getattr(params, "source", "files"), prog)
            if plain:  # the report names the inputs, not their unpacked copies (gone after the ingest)
                original = {str(c): str(p) for c, p in zip(plain, paths)}
                report["files"] = [original.get(f, f) for f in report["files"]]
                for sample in report["unparsable_samples"]:
                    sample["file"] = original.get(sample["file"], sample["file"])
                write_json(tmp / QUALITY_FILE, report)
        return StageResult(rows={"events": report["rows_kept"], "read": report["rows_read"]},
                           params={"files": [str(p) for p in files], "format": fmt, **vars(params)},
                           extra={"schema": {f.name: str(f.type) for f in S.ARROW_SCHEMA}})

    return run_stage(root, EVENTS_STAGE, run, input_fingerprint=fp, force=force, progress=progress)


@contextlib.contextmanager
def _unzipped(paths: list[Path], raw: Path) -> Iterator[list[Path]]:
    """``paths`` with each .zip replaced by its one CSV, streamed out to a temporary folder under ``raw`` (DuckDB
    reads RetailRocket's CSVs from files) and removed afterwards; [] when no path is a .zip."""
    if not any(p.suffix.lower() == ".zip" for p in paths):
        yield []
        return
    raw.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unzipped-", dir=raw))
    try:
        yield unzip_members(paths, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---- product names, for every consumer ----------------------------------------------------------------------

def load_product_names(root: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """The store's product names (product_id int64, stock_code, name; sorted by product_id), or None when it has
    none (REES46, RetailRocket) or the file fails its check against the events manifest (logged, never raised)."""
    try:
        manifest = read_manifest(root, EVENTS_STAGE)
    except ArtifactError as exc:
        log.warning("product names unavailable: %s", exc)
        return None
    path = stage_dir(root, EVENTS_STAGE) / ITEM_NAMES_FILE
    if manifest is None or ITEM_NAMES_FILE not in (manifest.get("files") or {}):
        if manifest is not None and path.exists():
            log.warning("%s/%s is not in the stage's manifest: ignored", EVENTS_STAGE, ITEM_NAMES_FILE)
        return None
    problem = check_files(root, EVENTS_STAGE, manifest, hashes=True, files=[ITEM_NAMES_FILE])
    if problem is None:
        try:
            df = pd.read_parquet(path, columns=list(NAME_COLUMNS))
            names = pd.DataFrame({"product_id": pd.to_numeric(df["product_id"], errors="raise").astype("int64"),
                                  "stock_code": df["stock_code"].fillna("").astype(str),
                                  "name": df["name"].fillna("").astype(str).map(lambda v: " ".join(v.split()))})
        except Exception as exc:  # pyarrow and pandas raise many kinds; any of them means "no names"
            problem = f"{EVENTS_STAGE}/{ITEM_NAMES_FILE} is unreadable ({type(exc).__name__})"
    if problem:  # the names only decorate: products are still shown, by code and id
        log.warning("product names unavailable (%s): labels fall back to ids; rebuild with "
                    "`python -m recsys build --force`", problem)
        return None
    return names.drop_duplicates("product_id").sort_values("product_id", kind="stable").reset_index(drop=True)
