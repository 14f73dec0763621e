"""The build pipeline: ingest (or the demo store), then every derived stage, each skipped when up to date."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.artifacts import HASH_SIDECAR, Progress, artifacts_root, file_hash, no_progress
from recsys.journal import build_transaction
from recsys.ingest.reader import IngestParams
from recsys.ingest.stage import build_events
from recsys.parallel import StageProcess, stage_function

log = logging.getLogger(__name__)

DEMO_EVENTS = 400_000
DEMO_SEED = 7


@dataclass(frozen=True)
class StageSpec:
    """A derived stage: ``target`` names ``module:function`` with the signature
    ``fn(root, *, force: bool, progress: Progress) -> (manifest, built)``."""
    name: str
    target: str
    spark: bool = False  # the stage can run on Spark (its function takes ``engine=SparkSpec``)
    beside: bool = False  # reads only the events stage: on a small store it runs in a second process (below)

    def function(self) -> Callable[..., tuple[dict, bool]]:
        return stage_function(self.target)


# Derived stages in build order; each reads only the artifacts of stages before it.
STAGES: list[StageSpec] = [
    StageSpec("aggregates", "recsys.aggregates:build", spark=True),
    StageSpec("rules", "recsys.rules:build", spark=True),
    StageSpec("model", "recsys.model:build"),
    StageSpec("index", "recsys.index:build"),
    StageSpec("products", "recsys.products:build"),
    StageSpec("evaluation", "recsys.evaluation:build", beside=True),  # last: it fits every model
]

# Up to this many cleaned events, a ``beside`` stage runs in a second process while this one builds the others
# (the demo store's first start: the evaluation and the model stage each train a two-tower and a ranker, one
# thread each). Above it they run in turn: at October size each of the two alone peaks at many GB.
# RECSYS_BUILD_PARALLEL=0 turns it off.
BESIDE_MAX_EVENTS = 2_000_000


def _runs_beside(spec: StageSpec, events_manifest: dict, selected: list[StageSpec], spark: Any) -> bool:
    others = [s for s in selected if s is not spec and not s.beside]
    rows = int((events_manifest.get("rows") or {}).get("events", BESIDE_MAX_EVENTS + 1))
    return (spec.beside and bool(others) and spark is None and rows <= BESIDE_MAX_EVENTS
            and (os.cpu_count() or 1) >= 2 and os.environ.get("RECSYS_BUILD_PARALLEL", "1") != "0")


def build_demo_input(root: str | os.PathLike | None, events: int = DEMO_EVENTS, seed: int = DEMO_SEED,
                     progress: Progress = no_progress) -> Path:
    """Generate the demo store's CSV under ``<root>/raw/`` (reused when it already exists for these settings)."""
    from recsys.ingest.demo import write_demo_csv
    raw = artifacts_root(root) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / f"demo-{events}-seed{seed}.csv"
    check = path.with_name(path.name + HASH_SIDECAR)  # written after the CSV: a reused CSV is verified first
    if path.exists() and check.exists() and check.read_text().strip() == file_hash(path):
        return path
    if path.exists():
        log.warning("%s does not match its recorded hash: generating it again", path.name)
    tmp = path.with_name(".tmp-" + path.name)
    write_demo_csv(tmp, events=events, seed=seed, progress=progress)
    tmp.replace(path)
    check.write_text(file_hash(path) + "\n")
    return path


def build(root: str | os.PathLike | None = None, inputs: list[Path] | None = None, *,
          demo_events: int = DEMO_EVENTS, seed: int = DEMO_SEED, force: bool = False,
          only: list[str] | None = None, progress: Progress = no_progress, spark: Any = None) -> dict[str, Any]:
    """Run every stage in order (a small store's evaluation beside the others, see ``BESIDE_MAX_EVENTS``); returns
    {stage: {"built": bool, "duration_s": float}}.

    Without ``inputs`` the deterministic demo store is generated and ingested. ``spark`` (a
    :class:`recsys.spark_engine.SparkSpec`) runs the events, aggregates and rules stages on Spark; the model and
    the stages after it stay on this machine and read the events Parquet as always.
    """
    n = len(STAGES) + 1
    summary: dict[str, Any] = {}

    def sub(i: int) -> Progress:
        return lambda f, msg: progress((i + max(0.0, min(1.0, f))) / n, msg)

    if inputs:
        paths, params = [p if "://" in str(p) else Path(p) for p in inputs], IngestParams(source="files")
    else:
        paths = [build_demo_input(root, demo_events, seed, progress=lambda f, m: sub(0)(f * 0.5, m))]
        params = IngestParams(source="demo")
    with build_transaction(root) as journal:  # a failure anywhere puts every stage back as it was: never a mix
        manifest, built = build_events(root, paths, params, force=force, progress=sub(0), spark=spark)
        summary["events"] = {"built": built, "duration_s": manifest["duration_s"]}
        selected = [s for s in STAGES if only is None or s.name in only]
        beside = {s.name: StageProcess(s.target, artifacts_root(root), journal, force=force)
                  for s in selected if _runs_beside(s, manifest, selected, spark)}
        try:
            _run_stages(root, selected, beside, summary, force=force, progress=progress, spark=spark)
        finally:
            for proc in beside.values():
                proc.stop()
    progress(1.0, "build complete")
    return {"events": summary["events"], **{s.name: summary[s.name] for s in selected}}


def _run_stages(root, selected: list[StageSpec], beside: dict[str, StageProcess], summary: dict[str, Any], *,
                force: bool, progress: Progress, spark: Any) -> None:
    """Every selected stage in order while the ``beside`` ones run in their own processes, then wait for those.
    The bar has one slot per stage: the events' (0), this process's stages, then the beside ones, whose progress
    fills their slots meanwhile."""
    here = [s for s in STAGES if s.name not in beside]
    slot = {s.name: i for i, s in enumerate(here, start=1)}
    slots = len(STAGES) + 1

    def at(i: int, f: float, msg: str) -> None:
        done = i + max(0.0, min(1.0, f)) + sum(p.fraction for p in beside.values())
        progress(min(1.0, done / slots), msg)

    def alongside(i: int) -> Progress:
        def report(f: float, msg: str) -> None:
            notes = [f"alongside: {p.message}" for p in beside.values() if p.running() and p.message]
            at(i, f, f"{msg} ({'; '.join(notes)})" if notes else msg)
        return report

    for spec in selected:
        if spec.name in beside:
            continue
        engine = {"engine": spark} if spark is not None and spec.spark else {}
        manifest, built = spec.function()(root, force=force, progress=alongside(slot[spec.name]), **engine)
        summary[spec.name] = {"built": built, "duration_s": manifest["duration_s"]}
        log.info("stage %s: %s", spec.name, "built" if built else "up to date")
    for name, proc in beside.items():
        summary[name] = proc.wait(lambda f, msg: at(len(here) + 1, 0.0, msg))
        log.info("stage %s: %s", name, "built" if summary[name]["built"] else "up to date")
