"""Every recommender, baselines and the two-tower alike, behind one protocol (see ``base``)."""
from recsys.recommenders.base import Recommender, Recommendations

__all__ = ["Recommender", "Recommendations"]
