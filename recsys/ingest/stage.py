"""The events stage: input files (REES46 CSV, or another store format an adapter reads) -> ``<root>/events/``.

Built by :func:`build_events`; read back by :func:`recsys.ingest.interactions.load_interactions` (as arrays) and
:func:`load_quality` (the cleaning report). The REES46 reader is ``recsys.ingest.reader``, other formats are
``recsys.ingest.adapters``, the Spark path ``recsys.ingest.spark``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from recsys import schema as S
from recsys.artifacts import EVENTS_STAGE, Progress, file_fingerprint, fingerprint, no_progress, require_stage
from recsys.journal import StageResult, run_stage
from recsys.ingest.adapters import build_adapted_events
from recsys.ingest.formats import detect_format
from recsys.ingest.reader import QUALITY_FILE, IngestError, IngestParams, check_inputs, ingest_files


def build_events(root: str | os.PathLike | None, paths: list[Path | str], params: IngestParams = IngestParams(),
                 *, force: bool = False, progress: Progress = no_progress, spark: Any = None) -> tuple[dict, bool]:
    """The events stage: ingest ``paths`` into ``<root>/events`` atomically, skipped when inputs are unchanged.

    ``spark`` (a :class:`recsys.spark_engine.SparkSpec`) runs the REES46 ingest on Spark, which also reads
    URIs (``hdfs://``, ``s3a://``); the output and the quality report are the same as DuckDB's."""
    if spark is not None:
        return _build_events_on_spark(root, paths, params, spark, force=force, progress=progress)
    paths = [Path(p) for p in paths]
    # other store formats (RetailRocket, UCI Online Retail), detected from the header
    if detect_format(paths) != "rees46":
        return build_adapted_events(root, paths, params, force=force, progress=progress)
    # ---- REES46
    check_inputs(paths)  # fail before touching anything
    fp = fingerprint([file_fingerprint(paths), vars(params)])

    def run(tmp: Path, prog: Progress) -> StageResult:
        report = ingest_files(paths, tmp, params, prog)
        return _events_result(report, paths, params)

    return run_stage(root, EVENTS_STAGE, run, input_fingerprint=fp, force=force, progress=progress)


def _events_result(report: dict[str, Any], paths: list, params: IngestParams,
                   extra: dict[str, Any] | None = None) -> StageResult:
    return StageResult(rows={"events": report["rows_kept"], "read": report["rows_read"]},
                       params={"files": [str(p) for p in paths], **vars(params)},
                       extra={"schema": {f.name: str(f.type) for f in S.ARROW_SCHEMA}, **(extra or {})})


def _build_events_on_spark(root: str | os.PathLike | None, paths: list[Path | str], params: IngestParams,
                           spec: Any, *, force: bool, progress: Progress) -> tuple[dict, bool]:
    """The REES46 events stage on Spark (the same fingerprint: both engines give the same stage)."""
    from recsys.spark_engine import is_uri, uri_fingerprint
    from recsys.ingest.spark import ingest_files_spark
    local = [Path(p) for p in paths if not is_uri(p)]
    if len(local) == len(paths):
        if detect_format(local) != "rees46":
            raise IngestError(f"{local[0]}: the Spark engine reads REES46 files only; build other formats "
                              "without --engine spark")
        check_inputs(local)
        fp = fingerprint([file_fingerprint(local), vars(params)])
    else:
        fp = fingerprint([uri_fingerprint(spec, [str(p) for p in paths]), vars(params)])
    inputs = [p if is_uri(p) else Path(p) for p in paths]

    def run(tmp: Path, prog: Progress) -> StageResult:
        report = ingest_files_spark(inputs, tmp, params, spec, prog)
        return _events_result(report, inputs, params, {"engine": "spark", "spark_master": spec.label})

    return run_stage(root, EVENTS_STAGE, run, input_fingerprint=fp, force=force, progress=progress)


def load_quality(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The data-quality report of the built events stage."""
    return json.loads((require_stage(root, EVENTS_STAGE) / QUALITY_FILE).read_text())
