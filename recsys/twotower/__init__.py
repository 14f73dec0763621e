"""The two-tower recommender: features, model, training + ``model`` stage, FAISS ``index`` stage, profiles.

Serving lives in ``recsys.recommend``; the ``Recommender``-protocol wrapper in ``recsys.recommenders.two_tower``.
"""
