"""The evaluation stage: every model (the served two-tower + ranker, the two-tower alone, the baselines) refitted on
one time split and scored on the days after it, under ``<root>/evaluation/``.

``protocol`` is the split, the targets and the scoring of one model (``evaluate``); ``stage`` is the build stage and
the results tables. ``build`` (``stage.build_evaluation_stage``) runs it; ``load`` (``stage.load_evaluation``) reads
the results back as an ``EvalResult``. Models come from ``recsys.recommenders.registry``; metrics from
``recsys.metrics``.
"""
from recsys import lazy_exports

__all__ = ["EvalResult", "build", "load"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "EvalResult": "recsys.evaluation.protocol:EvalResult",
    "build": "recsys.evaluation.stage:build_evaluation_stage",
    "load": "recsys.evaluation.stage:load_evaluation",
})
