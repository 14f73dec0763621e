"""What the REST API loads at start-up, and why a part is missing: the products service and the recommender
service, each loaded on its own so that a stage that is not built or is damaged costs only its endpoints, with the
503 message that says what to rebuild, and the stage report behind ``/health``.

The app that calls them is ``recsys.serving.api``; the routes that answer with them are ``recsys.serving.routes``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.artifacts import BUILD_COMMAND, ArtifactError, DamagedStage, StageNotBuilt, read_manifest, stage_problem

log = logging.getLogger(__name__)

SERVED_STAGES = ("events", "rules", "model", "index", "products")  # what /health reports on
RECOMMENDER_STAGES = ("model", "index")  # the ranker lives in the model stage; product names are optional
PRODUCT_STAGES = ("products",)  # the model's embeddings are optional there (feature neighbours without them)
RECOMMENDER_ENDPOINTS = "recommendations (/recommend, /users/{user_id}/recommendations)"
PRODUCT_ENDPOINTS = ("product lookups (/products/{product_id}/similar, /products/{product_id}/complements, "
                     "/search)")


def build_command(root: Path) -> str:
    """The command that rebuilds ``root``, shown to clients: a relative directory as given, an absolute one by its
    name only (the full path is in the server log)."""
    shown = f".../{root.name}" if root.is_absolute() else str(root)
    return f"{BUILD_COMMAND} --artifacts {shown}"


def stage_phrase(problem: ArtifactError) -> str:
    """What is wrong with one stage, naming the file relative to the artifacts directory."""
    if isinstance(problem, DamagedStage):
        return f"the {problem.stage} stage is damaged ({problem.problem})"
    if isinstance(problem, StageNotBuilt):
        return f"the {problem.stage} stage is not built"
    return "an artifact is unreadable"  # pragma: no cover - stage_problem returns only the two above


def unavailable(root: Path, what: str, stages: tuple[str, ...], exc: BaseException) -> str:
    """Why ``what`` cannot be served after loading ``stages`` raised ``exc``: every one of those stages that is
    not built or fails its size and hash check, and the command to run. No path, no exception text."""
    problems = [p for p in (stage_problem(root, s) for s in stages) if p is not None]
    if isinstance(exc, (StageNotBuilt, DamagedStage)) and exc.stage not in {p.stage for p in problems}:
        problems.insert(0, exc)  # a file checked on load only (a subset of a stage)
    if problems:
        return f"{what} are unavailable: {' and '.join(map(stage_phrase, problems))}; run `{build_command(root)}`"
    names = f"{' and '.join(stages)} stage{'s' if len(stages) > 1 else ''}"
    return (f"{what} are unavailable: the {names} could not be loaded although the files are as built (the server "
            f"log says why); run `{build_command(root)} --force`")


def load_part(root: Path, what: str, stages: tuple[str, ...], load: Callable[[], Any]) -> tuple[Any | None, str]:
    """``load()``, or (None, why) when it fails (see ``unavailable``). The exception and its traceback go to the
    server log, never to a client."""
    try:
        return load(), ""
    except Exception as exc:  # a damaged file must cost its endpoints, not the whole server
        log.warning("%s unavailable (artifacts %s): %s: %s", what, root, type(exc).__name__, exc,
                    exc_info=not isinstance(exc, ArtifactError) or exc.__cause__ is not None)
        return None, unavailable(root, what, stages, exc)


def load_products(root: Path) -> tuple[Any | None, str]:
    """The products service (similar, complements, search), or (None, why)."""
    from recsys.products.service import ProductService
    return load_part(root, PRODUCT_ENDPOINTS, PRODUCT_STAGES, lambda: ProductService(root))


def load_recommender(root: Path) -> tuple[Any | None, str]:
    """The two-tower recommender service, or (None, why it is unavailable)."""
    try:
        from recsys.serving.service import load_recommender_service
    except ImportError as exc:
        log.warning("the two-tower recommender cannot be imported: %s", exc)
        return None, f"{RECOMMENDER_ENDPOINTS} are unavailable: the two-tower recommender is not installed"
    return load_part(root, RECOMMENDER_ENDPOINTS, RECOMMENDER_STAGES, lambda: load_recommender_service(root))


def stage_report(root: Path, whys: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Build time of each served stage (None when not built), and the problems: ``whys`` (what the endpoints
    lack) plus every other damaged stage, such as one the endpoints loaded without (sizes only: cheap)."""
    stages, problems = {}, [w for w in whys if w]
    for stage in SERVED_STAGES:
        try:
            m = read_manifest(root, stage)
        except ArtifactError:
            m = None
        stages[stage] = m.get("built_at") if m else None
        problem = stage_problem(root, stage, hashes=False)
        if isinstance(problem, DamagedStage) and not any(stage_phrase(problem) in p for p in problems):
            problems.append(f"{stage_phrase(problem)}; run `{build_command(root)}`")
    return stages, problems
