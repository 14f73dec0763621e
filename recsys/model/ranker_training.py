"""The ranker's LightGBM side: which users it learns from, their graded labels, the LambdaRank fit with its early
stopping and validation against the two-tower's order, and ``predict`` (scores on one thread).

``recsys.model.ranker`` (``RankerRecommender.fit``) calls these on the rows that ``recsys.model.ranker_features``
builds; ``recsys.model.reasons`` scores its occluded rows with ``predict``.
"""
from __future__ import annotations

import numpy as np
from lightgbm import Booster, LGBMRanker
from lightgbm.callback import CallbackEnv, EarlyStopException

from recsys.ingest.interactions import Interactions
from recsys.model.ranker_features import FEATURES
from recsys.model.ranker_state import CART_I, PURCHASE_I, VIEW_I, PairStats, RankerConfig, pair_keys


MIN_TRAIN_USERS = 10  # users with a label after the inner cut needed to learn a ranker


def train_users(past: Interactions, future: Interactions, n: int, buyer_share: float,
                rng: np.random.Generator) -> np.ndarray:
    """The ranker's training users (sorted): users with events before the inner cut and a view, cart or purchase
    after it; at most ``n``: ``buyer_share`` of ``n`` drawn first from those who cart or buy after it (all of them
    if fewer), the rest from the users not drawn yet, so a store whose visitors rarely buy still gives the ranker
    buyers to learn from."""
    has_past = np.bincount(past.user, minlength=past.n_users) > 0

    def after(events):
        u = np.unique(future.user[np.isin(future.event, events)])
        return u[has_past[u]]
    users = after((VIEW_I, CART_I, PURCHASE_I))
    if len(users) <= n:
        return users
    buyers = after((CART_I, PURCHASE_I))
    n_buy = min(len(buyers), int(round(buyer_share * n)))
    picked = rng.choice(buyers, n_buy, replace=False)  # drawing none leaves the generator's state alone
    rest = np.setdiff1d(users, picked, assume_unique=True)
    return np.sort(np.concatenate([picked, rng.choice(rest, n - n_buy, replace=False)]))


def labels_for(labels: PairStats, u: np.ndarray, i: np.ndarray, n_items: int) -> np.ndarray:
    """Graded relevance of each (user, item) row: 3 bought, 2 carted, 1 viewed after the cut, else 0."""
    c, _, found = labels.lookup(pair_keys(u, i, n_items))
    y = np.zeros(len(u), np.int32)
    y[c[:, 0] > 0] = 1
    y[c[:, 1] > 0] = 2
    y[c[:, 2] > 0] = 3
    return y


def fit_ranker(config: RankerConfig, report: dict, users: np.ndarray, x: np.ndarray, y: np.ndarray,
               val_users: np.ndarray, other: LGBMRanker | None = None) -> LGBMRanker | None:
    """A LambdaRank model over these rows, early-stopped on ``val_users``; returned only if it orders their
    candidates better than the two-tower does (and than ``other``, returned instead when that one is best). Each
    comparison's NDCG@20 is appended to ``report["validation"]``."""
    grp_users, starts = np.unique(users, return_index=True)
    has_pos = np.add.reduceat(y > 0, starts) > 0 if len(starts) else np.zeros(0, bool)
    grp_users = grp_users[has_pos]
    is_val = np.isin(users, val_users)
    if len(grp_users) < MIN_TRAIN_USERS or not is_val[np.isin(users, grp_users)].any():
        return None
    in_grp = np.isin(users, grp_users)
    parts = {}
    for name, m in (("train", in_grp & ~is_val), ("val", in_grp & is_val)):
        _, counts = np.unique(users[m], return_counts=True)  # users are sorted: rows are grouped
        parts[name] = (x[m], y[m], counts)
    c = config
    model = LGBMRanker(objective="lambdarank", n_estimators=c.n_estimators, learning_rate=c.learning_rate,
                       num_leaves=c.num_leaves, min_child_samples=20, subsample=0.8, subsample_freq=1,
                       colsample_bytree=0.8, random_state=c.seed, num_threads=c.train_threads, deterministic=True,
                       force_row_wise=True, verbose=-1, label_gain=[0, 1, 3, 7])
    model.fit(parts["train"][0], parts["train"][1], group=parts["train"][2],
              eval_X=(parts["val"][0],), eval_y=(parts["val"][1],), eval_group=[parts["val"][2]], eval_at=[20],
              callbacks=[smoothed_early_stopping(c.early_stopping)])
    # keep the ranker only where it beats the two-tower's own order on the held-out users (same candidates)
    xv, yv, cv = parts["val"]
    scores = {"ranker": group_ndcg(yv, predict(model, xv), cv),
              "two_tower": group_ndcg(yv, xv[:, FEATURES.index("tt_score")], cv)}
    if other is not None:
        scores["all_items_ranker"] = group_ndcg(yv, predict(other, xv), cv)
    report.setdefault("validation", []).append({f"ndcg@20_{k}": round(v, 4) for k, v in scores.items()})
    best = max(scores, key=lambda k: (scores[k], k == "ranker"))  # ties: the model trained for these rows
    return {"ranker": model, "two_tower": None, "all_items_ranker": other}[best]


def smoothed_early_stopping(patience: int, window: int = 5):
    """A LightGBM callback: stop when the validation metric's moving average over ``window`` rounds has not
    risen for ``patience`` rounds, keeping the round where that average peaked (ties to the later round; the
    first ``window - 1`` rounds, averaged over fewer rounds, are not candidates).

    LightGBM's own ``early_stopping`` keeps the first round with the best raw score: on a few hundred validation
    users NDCG moves by a few thousandths from round to round, so a lucky third round (0.9405 against 0.9403
    thirty rounds on, a planted store) stopped training at three trees."""
    hist: list[float] = []
    best = {"round": 0, "score": -np.inf, "list": None}

    def callback(env: CallbackEnv) -> None:
        result = env.evaluation_result_list[0]  # (data name, metric, value, higher is better)
        hist.append(float(result[2]))
        smooth = float(np.mean(hist[-window:]))
        if len(hist) >= min(window, patience) and smooth >= best["score"]:  # a full window: one round is noise
            best.update(round=env.iteration, score=smooth, list=env.evaluation_result_list)
        if env.iteration - best["round"] >= patience:
            raise EarlyStopException(best["round"], best["list"])

    callback.order = 30  # where LightGBM runs its own early stopping
    return callback


def group_ndcg(y: np.ndarray, scores: np.ndarray, counts: np.ndarray, k: int = 20) -> float:
    """Mean NDCG@k (gain 2^y - 1) over consecutive groups of ``counts`` rows, ties to the earlier row."""
    out, s = [], 0
    for n in counts:
        yy, ss = y[s:s + n].astype(np.float64), scores[s:s + n]
        s += n
        disc = 1.0 / np.log2(np.arange(2, min(k, n) + 2))
        got = (2 ** yy[np.argsort(-ss, kind="stable")][:k] - 1) @ disc
        ideal = (2 ** np.sort(yy)[::-1][:k] - 1) @ disc
        if ideal > 0:
            out.append(got / ideal)
    return float(np.mean(out)) if out else 0.0


def predict(model, x: np.ndarray, **kwargs) -> np.ndarray:
    """LightGBM scores of rows on one thread, whatever the model was trained with. A loaded Booster would use every
    core: one user's ~150 candidates at 82 trees took 12 ms with OpenMP's spin-waits on a busy 2-core box, 0.6 ms on
    one thread (same scores)."""
    if isinstance(model, (Booster, LGBMRanker)):
        kwargs["num_threads"] = 1
    return np.asarray(model.predict(x, **kwargs))
