"""Every recommender, baselines and the two-tower alike, behind one protocol (see ``base``)."""
from recsys import lazy_exports

__all__ = ["Recommender", "Recommendations"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "Recommender": "recsys.recommenders.base:Recommender",
    "Recommendations": "recsys.recommenders.base:Recommendations",
})
