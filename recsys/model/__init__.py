"""The model stage: the two-tower retrieval model and the learned ranker over it, under ``<root>/model/``.

``build`` (``stage.build_model_stage``) trains both; ``load`` (``store.ModelArtifacts.load``) reads the arrays serving
needs. Modules: ``towers`` (the PyTorch model), ``features`` (item codes, histories), ``train`` (its training),
``two_tower`` (it as a ``Recommender``), ``retrieval`` (candidates through the index), ``ranker`` (the LightGBM
ranker, the served model) over ``ranker_state`` (its config and per-window state), ``ranker_features`` (its
candidate pool and feature rows) and ``ranker_training`` (its LightGBM fit), ``reasons`` (why each item is listed),
``profiles`` (example users for the pages).
"""
from recsys import lazy_exports

__all__ = ["ModelArtifacts", "ModelParams", "build", "load"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "ModelArtifacts": "recsys.model.store:ModelArtifacts",
    "ModelParams": "recsys.model.stage:ModelParams",
    "build": "recsys.model.stage:build_model_stage",
    "load": "recsys.model.store:ModelArtifacts.load",
})
