"""Reasons a person can read for the ranker's served items, each from the item's strongest evidence.

The ranker's features are grouped by the kind of evidence they carry (``GROUPS``); each group's strength for one
item is how much it adds to the item's score (``group_strengths``: the score minus the score with the group set
to a typical candidate of the same user). The strongest kind whose evidence the user's data holds is phrased with
the user's own numbers:

- repeat: "you bought this 3 times, last 12 days ago" (viewed / carted likewise)
- co_occurrence: "often bought with <label> that you carted (together in 4 baskets)" (the recent item with the
  largest co-occurrence; "often in the same sessions as" when the two were never carted or bought together);
  without a session partner, "often chosen by shoppers of <label>, which you bought" (the own item with the largest
  EASE weight towards it: the co-occurrence group holds the EASE score too)
- similar: "similar to <label> you viewed 2 days ago" (the history item closest in the two-tower's item space)
- category / brand: "from headphone, a category you shop: 2 purchases and 14 views, last 3 days ago"
- trending: "trending this week: carted or bought 12 times in the last 7 days"
- popular: "among the store's most bought: #3 (carted or bought 1,234 times)"

Without a learnt ranker (it did not beat the two-tower's order) the first kind with evidence in ``KINDS`` order
is used. Days count back from the serving ``now`` (the store's last event), never the wall clock. Only the listed
items are explained: O(k) lookups and one ``predict`` over (kinds + 1) * k rows. LightGBM's exact TreeSHAP
(``pred_contrib``, ``method="shap"``) measured ~0.65 ms per row on the demo ranker (82 trees), 6.5 ms for a
list of 10: over the serving budget, so it is kept for offline checks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys import schema as S
from recsys.model.ranker_features import FEATURES, SOURCES
from recsys.model.ranker_state import DAY, ease_columns, pair_keys, top_popular
from recsys.model.ranker_training import predict

KINDS = ("repeat", "co_occurrence", "similar", "category", "brand", "trending", "popular")
GROUPS = {
    "repeat": ("ui_views", "ui_carts", "ui_purchases", "ui_days_since", "src_own"),
    "co_occurrence": ("co_score", "src_co_occurrence", "ease_score", "src_ease"),
    "similar": ("tt_score", "tt_rank", "src_two_tower"),
    "category": ("uc_views", "uc_carts", "uc_purchases", "uc_days_since"),
    "brand": ("ub_views", "ub_carts", "ub_purchases"),
    "trending": ("pop_1d", "pop_7d", "buy_7d", "trend_7d", "src_trending"),
    "popular": ("pop_all", "buy_all"),
}  # user-level features (history size, days since the last visit, price ratio) say nothing about the item
SOURCE_LABELS = {"two_tower": "two-tower", "own": "own items", "co_occurrence": "co-occurrence",
                 "ease": "item-item (EASE)"}
VERBS = ("viewed", "carted", "bought")
HISTORY_CAP = 200          # the user's most recent own items searched for the closest one
MOST_BOUGHT = 0.01         # "among the store's most bought": the top 1% of items (at least 20)
_COL = {n: j for j, n in enumerate(FEATURES)}


def explain(ranker, user_code: int, items: np.ndarray, x: np.ndarray, labels: np.ndarray, *,
            exclude_seen: bool = False, now: int | None = None, history: np.ndarray | None = None,
            categories: np.ndarray | None = None, brands: np.ndarray | None = None, pool: np.ndarray | None = None,
            method: str = "occlusion") -> dict[str, list | np.ndarray]:
    """Columns kind, reason, source and because (the supporting item code, -1 for none) of the listed items (a
    dict, not a frame: building a frame costs more than the rest of a reason).

    ``x``: the items' feature rows as scored; ``pool``: the feature rows of all the user's ranked candidates (the
    reference of ``method="occlusion"``; default ``x``); ``labels``/``categories``/``brands``: display strings by
    item code; ``now``: the serving time (default the ranker's last event); ``history``: item codes to find the
    most similar one among (default the user's ``HISTORY_CAP`` most recent own items)."""
    st = ranker.state
    now = st.now if now is None else int(now)
    items = np.asarray(items, np.int64)
    n = len(items)
    ev = _evidence(ranker, user_code, items, history)
    model = ranker.rankers.get(exclude_seen)
    strength = None if model is None or n == 0 else group_strengths(model, x, method, x if pool is None else pool)
    kinds = choose_kinds(strength, _eligible(ev, items, brands))
    reasons, because = [], np.full(n, -1, np.int64)
    for j, kind in enumerate(kinds):
        reason, because[j] = _phrase(kind, j, int(items[j]), ev, st, labels, categories, brands, now)
        reasons.append(reason)
    return {"kind": kinds, "reason": reasons,
            "source": [_source(x[j], ev.ranks, int(c)) for j, c in enumerate(items)], "because": because}


@dataclass
class _Evidence:
    """What the reasons of one user's listed items quote, one entry per item (``n`` of them)."""
    # the user's strongest event with the item: verb, how many, its last time, whether that time is of that event
    verb: list[str]
    count: np.ndarray
    last: np.ndarray
    exact: np.ndarray
    # the supporting items (-1 for none): the co-occurring recent item, the closest history item, the own item
    # EASE weighs most towards it; then the user's ``_touches`` of them (3n rows: partner, similar, chosen_with)
    partner: np.ndarray
    similar: np.ndarray
    chosen_with: np.ndarray
    o_verb: list[str]
    o_last: np.ndarray
    o_exact: np.ndarray
    ranks: dict              # ``store_ranks``
    cat_c: np.ndarray        # the user's (views, carts, purchases) in the item's category, the last one, found
    cat_last: np.ndarray
    cat_found: np.ndarray
    brand_c: np.ndarray      # the user's (views, carts, purchases) of the item's brand
    pop: np.ndarray          # the item's row of the state's popularity


def _evidence(ranker, user_code: int, items: np.ndarray, history: np.ndarray | None) -> _Evidence:
    """The user's evidence about each item, and about the items that would support its reason."""
    st = ranker.state
    n = len(items)
    verb, count, last, exact = _touches(ranker, user_code, items)
    partner = _co_partners(st, user_code, items)
    hist = _own_items(st, user_code) if history is None else np.unique(np.asarray(history, np.int64))
    similar = _closest(ranker.item_vecs, items, hist)
    chosen_with = _ease_partners(ranker, user_code, items)
    others = np.concatenate([partner, similar, chosen_with])
    o_verb, _, o_last, o_exact = _touches(ranker, user_code, np.maximum(others, 0))
    users, ranks = np.full(n, user_code), store_ranks(ranker)
    cat_c, cat_last, cat_found = st.uc.lookup(pair_keys(users, ranker.cat[items], ranks["n_cat"]))
    brand_c, _, _ = st.ub.lookup(pair_keys(users, ranker.brand[items], ranks["n_brand"]))
    return _Evidence(verb, count, last, exact, partner, similar, chosen_with, o_verb, o_last, o_exact, ranks,
                     cat_c, cat_last, cat_found, brand_c, st.pop[items])


def _eligible(ev: _Evidence, items: np.ndarray, brands: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per kind, the items whose evidence the user's data holds (the kinds ``choose_kinds`` may pick)."""
    return {"repeat": ev.count > 0, "co_occurrence": (ev.partner >= 0) | (ev.chosen_with >= 0),
            "similar": ev.similar >= 0, "category": ev.cat_found & (ev.cat_c.sum(1) > 0),
            "brand": (ev.brand_c.sum(1) > 0) & _known(brands, items, S.UNKNOWN_BRAND),
            "trending": ev.pop[:, 1] > 0, "popular": ev.pop[:, 2] > 0}


def _phrase(kind: str, j: int, c: int, ev: _Evidence, st, labels: np.ndarray, categories: np.ndarray | None,
            brands: np.ndarray | None, now: int) -> tuple[str, int]:
    """The reason of the ``j``-th listed item (code ``c``) of this kind, and the item it names (-1 for none)."""
    n = len(ev.count)
    if kind == "repeat":
        return _repeat(ev.verb[j], int(ev.count[j]), int(ev.last[j]), bool(ev.exact[j]), now), c
    if kind == "co_occurrence" and ev.partner[j] >= 0:
        p = int(ev.partner[j])
        return _co_reason(labels[p], ev.o_verb[j], _co_bought(st, p, c)), p
    if kind == "co_occurrence":  # no session partner: the history item EASE weighs most for it
        p = int(ev.chosen_with[j])
        return f"often chosen by shoppers of {labels[p]}, which you {ev.o_verb[2 * n + j]}", p
    if kind == "similar":
        s, o = int(ev.similar[j]), n + j
        when = _ago(now - ev.o_last[o]) if ev.o_exact[o] else f"(last touched {_ago(now - ev.o_last[o])})"
        return f"similar to {labels[s]} you {ev.o_verb[o]} {when}", s
    if kind == "category":
        name = _short(categories[c]) if _known(categories, [c], S.UNKNOWN_CATEGORY)[0] else None
        return _affinity("category", name, ev.cat_c[j], now - int(ev.cat_last[j])), -1
    if kind == "brand":
        return _affinity("brand", str(brands[c]), ev.brand_c[j], None), -1
    if kind == "trending":
        return _trending(ev.pop[j]), -1
    if kind == "popular":
        return _popular(ev.pop[j], int(ev.ranks["buy_rank"][c]), len(ev.ranks["buy_rank"])), -1
    return "matches your shopping history (two-tower)", -1


def group_strengths(model, x: np.ndarray, method: str = "occlusion", pool: np.ndarray | None = None) -> np.ndarray:
    """(n, len(KINDS)) how much each kind's features add to each row's score.

    ``occlusion``: the score minus the score with that kind's features set to the pool's median row (a typical
    candidate of this user): one ``predict`` over (kinds + 1) * n rows, ~0.1 ms for 10 items. ``shap``: the sum of
    the kind's TreeSHAP values (``pred_contrib``), exact but ~0.65 ms per row at 82 trees (too slow to serve)."""
    groups = [[_COL[f] for f in GROUPS[k]] for k in KINDS]
    if method == "shap":
        contrib = predict(model, x, pred_contrib=True)[:, :len(FEATURES)]
        return np.stack([contrib[:, g].sum(1) for g in groups], 1)
    if method != "occlusion":
        raise ValueError(f"method must be 'occlusion' or 'shap' (got {method!r})")
    ref = np.median(x if pool is None else pool, axis=0).astype(x.dtype)
    rows = np.repeat(x[None], len(KINDS) + 1, 0)  # (K + 1, n, F): the rows as scored, then one per kind occluded
    for k, g in enumerate(groups, 1):
        rows[k][:, g] = ref[g]
    f = predict(model, rows.reshape(-1, x.shape[1])).reshape(len(KINDS) + 1, len(x))
    return (f[0] - f[1:]).T


def choose_kinds(strength: np.ndarray | None, ok: dict[str, np.ndarray]) -> list[str]:
    """Per row, the eligible kind that adds the most to the score (``strength``: (n, len(KINDS))); without
    strengths, or when no eligible kind adds anything, the first eligible kind in ``KINDS`` order ("two_tower"
    when nothing is eligible)."""
    n = len(next(iter(ok.values()))) if ok else 0
    out = []
    for j in range(n):
        eligible = [k for k, kind in enumerate(KINDS) if ok[kind][j]]
        if not eligible:
            out.append("two_tower")
            continue
        best = eligible[0]
        if strength is not None:
            top = max(eligible, key=lambda k: strength[j, k])  # ties to the earlier kind
            if strength[j, top] > 0:
                best = top
        out.append(KINDS[best])
    return out


def _touches(ranker, user_code: int, codes: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The user's strongest event with each item: (verb, how many of it, its last time, whether that time is of
    that event: a state stored without ``buy_last`` only knows the last event of any kind)."""
    st = ranker.state
    keys = pair_keys(np.full(len(codes), user_code), codes, ranker.n_items)
    counts, last, _ = st.ui.lookup(keys)
    strongest = np.where(counts[:, 2] > 0, 2, np.where(counts[:, 1] > 0, 1, 0))
    count = counts[np.arange(len(codes)), strongest].astype(np.int64)
    exact = strongest == 0  # the last event of a viewed-only item is a view
    if st.buy_last is not None:  # the last cart / purchase itself, not the last event of any kind
        bl = st.buy_last.lookup(keys)
        last = np.where(strongest == 2, bl[:, 1], np.where(strongest == 1, bl[:, 0], last))
        exact[:] = True
    return [VERBS[s] for s in strongest], count, last.astype(np.int64), exact


def _co_partners(st, user_code: int, items: np.ndarray) -> np.ndarray:
    """Per item, the user's recent item with the largest co-occurrence with it (-1 for none)."""
    rec = st.recent
    lo, hi = rec.indptr[user_code], rec.indptr[user_code + 1]
    r_items = rec.indices[lo:hi][np.argsort(-rec.data[lo:hi], kind="stable")]  # most recent first
    co = np.zeros((len(r_items), len(items)), np.float32)
    order = np.argsort(items)
    for a, r in enumerate(r_items):
        cols, vals = st.co.indices[st.co.indptr[r]:st.co.indptr[r + 1]], st.co.data[st.co.indptr[r]:st.co.indptr[r + 1]]
        pos, hit = S.find_sorted(items[order], cols)
        co[a, order[pos[hit]]] = vals[hit]
    if len(r_items) == 0:
        return np.full(len(items), -1, np.int64)
    best = co.argmax(0)  # ties to the more recent item
    return np.where(co[best, np.arange(len(items))] > 0, r_items[best], -1).astype(np.int64)


def _ease_partners(ranker, user_code: int, items: np.ndarray) -> np.ndarray:
    """Per item, the user's own item (of the ``HISTORY_CAP`` most recent) with the largest positive EASE weight
    towards it: the history item that most says "shoppers of that also chose this" (-1 for none)."""
    st = ranker.state
    out = np.full(len(items), -1, np.int64)
    if st.ease_items is None or len(st.ease_items) == 0 or len(items) == 0:
        return out
    col = ease_columns(st, ranker.n_items)
    own = _own_items(st, user_code)
    own = own[col[own] >= 0]
    if len(own) == 0:
        return out
    jc = col[items]
    w = st.ease_B[np.ix_(col[own], np.maximum(jc, 0))]  # (H, k): weight of each own item towards each item
    w[:, jc < 0] = 0.0
    w[own[:, None] == items[None, :]] = 0.0
    best = w.argmax(0)  # ties to the more recent own item
    return np.where(w[best, np.arange(len(items))] > 0, own[best], -1).astype(np.int64)


def _co_bought(st, a: int, b: int) -> int | None:
    """Sessions where both items were carted or bought (None in a state stored without that count)."""
    m = st.co_bought
    if m is None:
        return None
    cols = m.indices[m.indptr[a]:m.indptr[a + 1]]
    hit = np.flatnonzero(cols == b)
    return int(m.data[m.indptr[a] + hit[0]]) if len(hit) else 0


def _own_items(st, user_code: int) -> np.ndarray:
    """The user's ``HISTORY_CAP`` most recently touched items."""
    lo, hi = st.own.indptr[user_code], st.own.indptr[user_code + 1]
    return st.own.indices[lo:hi][np.argsort(-st.own.data[lo:hi], kind="stable")[:HISTORY_CAP]].astype(np.int64)


def _closest(item_vecs: np.ndarray, items: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """Per item, the other history item with the largest inner product of item vectors (-1 for none)."""
    if len(hist) == 0 or len(items) == 0:
        return np.full(len(items), -1, np.int64)
    sims = item_vecs[items] @ item_vecs[hist].T  # (k, H)
    sims[items[:, None] == hist[None, :]] = -np.inf
    best = sims.argmax(1)
    return np.where(np.isfinite(sims[np.arange(len(items)), best]), hist[best], -1).astype(np.int64)


def store_ranks(ranker) -> dict:
    """Store-wide facts computed once per loaded state (``load`` warms them): purchase rank, which items the
    trending source lists for the last week (``trending``) or for the whole window (``popular``), as
    ``build_state`` chose them, and the category / brand key counts."""
    st = ranker.state
    got = st.cache.get("ranks")
    if got is None:
        n_i, top = len(st.pop), ranker.config.n_trending
        buy_rank = np.empty(n_i, np.int64)
        buy_rank[np.lexsort((np.arange(n_i), -st.pop[:, 4]))] = np.arange(1, n_i + 1)
        recent_top, all_top = top_popular(st.pop, top)  # the lists build_state chose from
        trending, popular = np.zeros(n_i, bool), np.zeros(n_i, bool)
        trending[recent_top] = True
        popular[all_top] = True
        got = st.cache.setdefault("ranks", {"buy_rank": buy_rank, "trending": trending, "popular": popular,
                                                   "n_cat": int(ranker.cat.max(initial=0)) + 1,
                                                   "n_brand": int(ranker.brand.max(initial=0)) + 1})
    return got


def _source(row: np.ndarray, ranks: dict[str, np.ndarray], item: int) -> str:
    """The candidate sources that proposed the item, e.g. "two-tower, own items"."""
    names = []
    for s in SOURCES:
        if row[_COL[f"src_{s}"]] > 0:
            if s == "trending":
                names += [n for n in ("trending", "popular") if ranks[n][item]] or ["trending"]
            else:
                names.append(SOURCE_LABELS[s])
    return ", ".join(names) or "two-tower"


def _ago(seconds: float) -> str:
    days = int(max(seconds, 0) // DAY)
    return "today" if days == 0 else "yesterday" if days == 1 else f"{days} days ago"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n:,} times"


def _repeat(verb: str, count: int, last: int, exact: bool, now: int) -> str:
    when = _ago(now - last)
    if not exact:
        return f"you {verb} this {_times(count)}, last touched {when}"
    return f"you {verb} this {when}" if count == 1 else f"you {verb} this {_times(count)}, last {when}"


def _co_reason(label: str, verb: str, both: int | None) -> str:
    if not both:  # co-occurring in sessions, never both carted or bought there (or not counted)
        return f"often in the same sessions as {label} that you {verb}"
    return (f"often bought with {label} that you {verb} (together in {both:,} baskets)" if both > 1 else
            f"bought with {label} that you {verb} (together in 1 basket)")


def _counted(counts: np.ndarray) -> str:
    """'2 purchases, 1 cart and 14 views' from (views, carts, purchases) counts."""
    parts = [f"{int(c):,} {name}{'s' if int(c) != 1 else ''}"
             for c, name in zip(counts[::-1], ("purchase", "cart", "view")) if c > 0]
    return " and ".join(parts) if len(parts) < 3 else f"{parts[0]}, {parts[1]} and {parts[2]}"


def _affinity(what: str, name: str | None, counts: np.ndarray, seconds: float | None) -> str:
    head = f"from {name}, a {what} you shop" if name else f"from a {what} you shop"
    tail = "" if seconds is None else f", last {_ago(seconds)}"
    return f"{head}: {_counted(counts)}{tail}"


def _trending(pop: np.ndarray) -> str:
    week, bought = int(pop[1]), int(pop[3])
    return (f"trending this week: carted or bought {_times(bought)} in the last 7 days" if bought else
            f"trending this week: viewed {_times(week)} in the last 7 days")


def _popular(pop: np.ndarray, rank: int, n_items: int) -> str:
    total, bought = int(pop[2]), int(pop[4])
    if bought and rank <= max(20, int(MOST_BOUGHT * n_items)):
        return f"among the store's most bought: #{rank:,} (carted or bought {_times(bought)})"
    return (f"popular in this store: carted or bought {_times(bought)}" if bought else
            f"popular in this store: viewed {_times(total)}")


def _short(category: str) -> str:
    return str(category).rsplit(".", 1)[-1]


def _known(names: np.ndarray | None, codes, unknown: str) -> np.ndarray:
    if names is None:
        return np.zeros(len(codes), bool)
    return np.array([str(names[c]) != unknown for c in codes], bool)
