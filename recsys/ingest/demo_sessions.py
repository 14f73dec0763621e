"""The demo store's shoppers: their sessions simulated over a world, chunk by chunk of users, with vectorised numpy.

Items are drawn by inverse CDF over the world's popularity; a session is a browsing walk over similar items, a
view -> cart -> purchase funnel, complementary purchases in the same session or a follow-up one, and repeat
purchases of consumables; some sessions restart under a new id. ``chunk_rows`` gives a chunk's rows (``ROW``)
sorted by time, exactly as many as ``plan_chunks`` asked for, with the planted dirty rows flagged;
``recsys.ingest.demo`` writes them as CSV.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.ingest.demo_catalog import DAYS, DemoConfig
from recsys.ingest.demo_world import ROWS_PER_SESSION, World, cumulative, draw_from_cdf

VIEW, CART, PURCHASE, REMOVE = range(4)  # codes into schema.EVENT_TYPES

# ---- drawing items and categories (vectorised inverse-CDF draws) ------------------------------------------

def _draw_range(cw: np.ndarray, s: np.ndarray, e: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per row, a position in [s, e) drawn by the weights whose cumulative sums are ``cw`` (length n+1)."""
    lo, hi = cw[s], cw[e]
    pos = np.searchsorted(cw, lo + u * (hi - lo), side="right") - 1
    return np.clip(pos, s, np.maximum(e - 1, s))


def _more_popular(w: World, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Of two candidate products, the more popular one (people click what others click)."""
    return np.where(w.cw[a + 1] - w.cw[a] >= w.cw[b + 1] - w.cw[b], a, b)


def _pick_popular(w: World, cats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A product of each category, by popularity (power law)."""
    return _draw_range(w.cw, w.cat_start[cats], w.cat_end[cats], rng.random(len(cats)))


def _pick_brand(w: World, cats: np.ndarray, brands: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A product of each (category, brand) by popularity, and whether the category has that brand at all."""
    key = cats.astype(np.int64) * len(w.brands) + brands
    s, e = np.searchsorted(w.cb_key, key), np.searchsorted(w.cb_key, key, side="right")
    return _draw_range(w.cw, s, e, rng.random(len(cats))), e > s


def _draw_category(w: World, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A category per session: mostly from the user's favourite departments, else the store's mix."""
    n = len(users)
    fav = rng.random(n) < w.user_taste[users]
    dept = np.where(fav, w.user_dept[users, rng.integers(0, 2, n)], draw_from_cdf(w.dept_cw, rng.random(n)))
    idx = _draw_range(w.dept_cat_cw, w.dept_ptr[dept], w.dept_ptr[dept + 1], rng.random(n))
    return w.dept_cats[idx]


def _first_items(w: World, cats: np.ndarray, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Where browsing in a category starts: the favourite brand, the user's price band, or a popular item."""
    n = len(cats)
    r = rng.random(n)
    pos = _pick_popular(w, cats, rng)
    s, e = w.cat_start[cats], w.cat_end[cats]
    q = np.clip(w.user_price[users] + rng.normal(0, .12, n), 0, .999)
    band = r > .65
    in_band = _more_popular(w, w.by_price[(s + q * (e - s)).astype(np.int64)],
                            w.by_price[(s + np.clip(q + rng.normal(0, .05, n), 0, .999) * (e - s)).astype(np.int64)])
    pos[band] = in_band[band]
    loyal_pos, has = _pick_brand(w, cats, w.user_brand[users], rng)
    loyal = (r < w.user_loyalty[users]) & has
    pos[loyal] = loyal_pos[loyal]
    return pos


def _complement_items(w: World, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For bought items whose category has complements: a complementary item, often of the same brand."""
    c = w.prod_cat[items]
    idx = np.searchsorted(w.comp_cw, c + rng.random(len(items)))
    idx = np.clip(idx, w.comp_ptr[c], w.comp_ptr[c + 1] - 1)
    cats = w.comp_cat[idx]
    pos = _pick_popular(w, cats, rng)
    same_pos, has = _pick_brand(w, cats, w.prod_brand_any[items], rng)
    same = has & (rng.random(len(items)) < .5)
    pos[same] = same_pos[same]
    return pos


def _walk(w: World, first: np.ndarray, n_views: np.ndarray, users: np.ndarray, rng: np.random.Generator,
          switch: float = .1) -> np.ndarray:
    """Viewed items of each session, flat (session-major): a Markov walk over similar items.

    Each step goes to a neighbour in catalog order (same category, mostly same brand, nearby price), jumps to a
    popular item of the same category, comes back to the first item, or (``switch``) moves to a new category.
    """
    off = cumulative(n_views).astype(np.int64)[:-1]
    items = np.empty(int(n_views.sum()), np.int32)
    items[off] = first
    cur = first.astype(np.int64)
    alive = np.arange(len(first))
    for t in range(1, int(n_views.max(initial=0))):
        alive = alive[n_views[alive] > t]
        c = cur[alive]
        cats = w.prod_cat[c]
        m = len(alive)
        r = rng.random(m)
        lo, hi = w.cat_start[cats], w.cat_end[cats] - 1
        sign = np.where(rng.random(m) < .5, -1, 1)
        new = _more_popular(w, np.clip(c + sign * rng.geometric(.45, m), lo, hi),
                            np.clip(c + sign * rng.geometric(.3, m), lo, hi))
        jump = (r >= .55) & (r < .8)
        new[jump] = _pick_popular(w, cats[jump], rng)
        back = (r >= .8) & (r < .9)
        new[back] = first[alive[back]]
        sw = r >= 1 - switch
        if sw.any():
            u = users[alive[sw]]
            new[sw] = _first_items(w, _draw_category(w, u, rng), u, rng)
        cur[alive] = new
        items[off[alive] + t] = new
    return items


# ---- sessions: browsing, funnel, complements, follow-ups ------------------------------------------------

END = DAYS * 86400  # seconds since START
ROW = np.dtype([("t", "<i4"), ("item", "<i4"), ("user", "<i4"), ("sid", "<i8"), ("ev", "u1"), ("flags", "u1"),
                ("kind", "u1")])
BRAND_BLANK, NO_SESSION = 1, 2  # row flags
KIND_BROWSE, KIND_COMPLEMENT, KIND_FOLLOW_UP, KIND_REPEAT = range(4)


def _session_starts(w: World, users: np.ndarray, first: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Start second of each session: a user's first session on their first day, the others on a day drawn by
    traffic from then on; the hour by the daily curve."""
    n = len(users)
    arrival = w.user_arrival[users]
    lo = np.where(arrival > 0, w.day_cdf[np.maximum(arrival - 1, 0)], 0.0)
    day = np.where(first, arrival, draw_from_cdf(w.day_cdf, lo + rng.random(n) * (1 - lo)))
    hour = draw_from_cdf(w.hour_cdf, rng.random(n))
    return day * 86400 + hour * 3600 + rng.integers(0, 3600, n)


def _sessions(w: World, users: np.ndarray, start: np.ndarray, first: np.ndarray, n_views: np.ndarray,
              buy_p: np.ndarray, buy_pos: np.ndarray, kind: np.ndarray, rng: np.random.Generator,
              cfg: DemoConfig, *, planned: bool) -> dict[str, np.ndarray]:
    """Rows of sessions (sorted by session, then order): views, then carts and purchases, with timestamps."""
    S = len(users)
    items = _walk(w, first, n_views, users, rng, switch=.1 if planned else 0.0)
    off = cumulative(n_views).astype(np.int64)[:-1]
    sess = [np.repeat(np.arange(S), n_views)]
    seq = [10 * (np.arange(len(items)) - np.repeat(off, n_views))]
    item, ev, kd = [items], [np.zeros(len(items), np.uint8)], [np.repeat(kind, n_views)]

    def add(s: np.ndarray, q: np.ndarray, it: np.ndarray, e: int, k: np.ndarray | int | None = None) -> None:
        sess.append(s)
        seq.append(q)
        item.append(it)
        ev.append(np.full(len(s), e, np.uint8))
        kd.append(kind[s] if k is None else np.full(len(s), k, np.uint8))

    n = n_views
    b = np.flatnonzero(rng.random(S) < buy_p)
    target = items[off[b] + buy_pos[b]]
    carted = rng.random(len(b)) < cfg.cart_before_purchase
    add(b[carted], 10 * buy_pos[b][carted] + 1, target[carted], CART)
    add(b, 10 * n[b] + 1, target, PURCHASE)
    if planned:
        two = (rng.random(len(b)) < cfg.second_item) & (n[b] >= 2)
        s2 = b[two]
        j2 = (rng.random(len(s2)) * n[s2]).astype(np.int64)
        it2 = items[off[s2] + j2]
        ok = it2 != target[two]
        s2, j2, it2 = s2[ok], j2[ok], it2[ok]
        c2 = rng.random(len(s2)) < cfg.cart_before_purchase
        add(s2[c2], 10 * j2[c2] + 2, it2[c2], CART)
        add(s2, 10 * n[s2] + 2, it2, PURCHASE)
        others = np.setdiff1d(np.arange(S), b, assume_unique=True)
        nb = others[rng.random(len(others)) < cfg.abandon_rate * np.clip(np.sqrt(n[others] / 3), .5, 2)]
        ja = (rng.random(len(nb)) * n[nb]).astype(np.int64)
        ia = items[off[nb] + ja]
        add(nb, 10 * ja + 3, ia, CART)
        rm = rng.random(len(nb)) < cfg.remove_share
        add(nb[rm], 10 * n[nb[rm]] + 3, ia[rm], REMOVE)
        # a complementary item browsed (and often bought) right after the purchase
        tc = w.prod_cat[target]
        cs = (w.comp_ptr[tc + 1] > w.comp_ptr[tc]) & (rng.random(len(b)) < cfg.complement_same)
        sb = b[cs]
        k = np.minimum(rng.geometric(.5, len(sb)), 5)
        citems = _walk(w, _complement_items(w, target[cs], rng), k, users[sb], rng, switch=0.0)
        coff = cumulative(k).astype(np.int64)[:-1]
        base = 10 * n[sb] + 10
        add(np.repeat(sb, k), np.repeat(base, k) + 10 * (np.arange(len(citems)) - np.repeat(coff, k)), citems,
            VIEW, KIND_COMPLEMENT)
        cb = rng.random(len(sb)) < cfg.complement_buy
        cc = cb & (rng.random(len(sb)) < cfg.cart_before_purchase)
        last = citems[coff + k - 1]
        add(sb[cc], base[cc] + 10 * (k[cc] - 1) + 1, last[cc], CART, KIND_COMPLEMENT)
        add(sb[cb], base[cb] + 10 * (k[cb] - 1) + 2, last[cb], PURCHASE, KIND_COMPLEMENT)
    sess, seq, item, ev, kd = (np.concatenate(x) for x in (sess, seq, item, ev, kd))
    order = np.lexsort((seq, sess))
    sess, item, ev, kd = sess[order], item[order], ev[order], kd[order]
    return {"sess": sess, "item": item, "ev": ev, "kind": kd, "t": _timestamps(sess, ev, start, rng)}


def _timestamps(sess: np.ndarray, ev: np.ndarray, start: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row times: the session start plus dwell gaps (>= 1 s, so no accidental duplicates), kept inside the period."""
    R = len(sess)
    gap = np.where(ev == VIEW, np.clip(rng.lognormal(np.log(30), 1.0, R), 1, 1200).astype(np.int64),
                   np.where(ev == CART, rng.integers(2, 40, R),
                            np.where(ev == PURCHASE, rng.integers(20, 400, R), rng.integers(5, 60, R))))
    firsts = np.searchsorted(sess, np.arange(len(start)))
    gap[firsts[firsts < R]] = 0
    cs = np.cumsum(gap)
    t = start[sess] + cs - cs[firsts][sess]
    last = np.append(firsts[1:], R) - 1
    over = np.maximum(0, t[last] - (END - 1))  # a session running past the end starts earlier instead
    return t - over[sess]


def _restart_sessions(rows: dict[str, np.ndarray], S: int, rng: np.random.Generator,
                      cfg: DemoConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Cut some sessions in two: the tail gets a new session (index S + k) a few minutes later, as when the site
    issues a new user_session after a pause; a cart can then sit in the session before its purchase."""
    sess, t = rows["sess"], rows["t"].copy()
    firsts = np.searchsorted(sess, np.arange(S))
    size = np.diff(np.append(firsts, len(sess)))
    cut = rng.random(S) < cfg.session_restart * (size >= 2)
    restarted = np.flatnonzero(cut)
    at = 1 + (rng.random(S) * (size - 1)).astype(np.int64)  # first row of the new session
    tail = cut[sess] & (np.arange(len(sess)) - firsts[sess] >= at[sess])
    last_t = t[np.append(firsts[1:], len(sess)) - 1]
    gap = np.minimum(rng.integers(120, 1800, S), END - 1 - last_t)
    t[tail] += gap[sess[tail]]
    new_sess = sess.copy()
    new_sess[tail] = S + (np.cumsum(cut) - 1)[sess[tail]]
    order = np.argsort(new_sess, kind="stable")
    return {**{k: v[order] for k, v in rows.items()}, "sess": new_sess[order], "t": t[order]}, restarted


def _simulate(w: World, owners: np.ndarray, first_visit: np.ndarray, rng: np.random.Generator,
              cfg: DemoConfig) -> dict[str, np.ndarray]:
    """Planned sessions of ``owners`` (one entry per session) plus their follow-up sessions (complements, repeats)."""
    S = len(owners)
    start = _session_starts(w, owners, first_visit, rng)
    n_views = np.minimum(rng.geometric(1 / (1 + rng.lognormal(np.log(2.0), .8, S))), 300)
    cats = _draw_category(w, owners, rng)
    first = _first_items(w, cats, owners, rng)
    buy_p = (cfg.buy_rate * w.user_buy[owners] * np.where(w.day_sale[start // 86400], 1.5, 1.0)
             * np.clip(np.sqrt(n_views / 3), .5, 2) * np.where(w.cat_consumable[cats], 1.6, 1.0))
    buy_pos = np.minimum((n_views * rng.random(S) ** .6).astype(np.int64), n_views - 1)
    cur = _sessions(w, owners, start, first, n_views, buy_p, buy_pos, np.zeros(S, np.uint8), rng, cfg,
                    planned=True)
    cur, restarted = _restart_sessions(cur, S, rng, cfg)
    parts, users, roots = [cur], [np.concatenate([owners, owners[restarted]])], [np.concatenate([np.arange(S),
                                                                                                 restarted])]
    n_sess = S + len(restarted)
    for _ in range(3):  # follow-ups of follow-ups: repeat purchases chain
        p = np.flatnonzero(cur["ev"] == PURCHASE)
        it, tp, ps, kd = cur["item"][p], cur["t"][p], cur["sess"][p], cur["kind"][p]
        c = w.prod_cat[it]
        nxt = (kd == KIND_BROWSE) & (w.comp_ptr[c + 1] > w.comp_ptr[c]) & (rng.random(len(p)) < cfg.complement_next)
        rep = w.cat_consumable[c] & (rng.random(len(p)) < cfg.repeat_rate)
        parent = np.concatenate([ps[nxt], ps[rep]])
        f_start = np.concatenate([tp[nxt] + np.clip(rng.exponential(20 * 3600, nxt.sum()), 600, 7 * 86400),
                                  tp[rep] + rng.lognormal(np.log(12 * 86400), .5, rep.sum())]).astype(np.int64)
        f_first = np.concatenate([_complement_items(w, it[nxt], rng), it[rep]])
        f_n = np.concatenate([np.minimum(rng.geometric(.45, nxt.sum()), 6), 1 + (rng.random(rep.sum()) < .4)])
        f_kind = np.concatenate([np.full(nxt.sum(), KIND_FOLLOW_UP, np.uint8), np.full(rep.sum(), KIND_REPEAT,
                                                                                       np.uint8)])
        keep = f_start < END - 3600
        if not keep.any():
            break
        parent, f_start, f_first, f_n, f_kind = (x[keep] for x in (parent, f_start, f_first, f_n, f_kind))
        f_users = users[-1][parent]
        follow = f_kind == KIND_FOLLOW_UP
        cur = _sessions(w, f_users, f_start, f_first, f_n, np.where(follow, cfg.complement_buy * .8, .85),
                        np.where(follow, f_n - 1, 0), f_kind, rng, cfg, planned=False)
        parts.append({**cur, "sess": cur["sess"] + n_sess})
        users.append(f_users)
        roots.append(roots[-1][parent])
        n_sess += len(f_users)
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {**out, "users": np.concatenate(users), "root": np.concatenate(roots)}


def _keep_rows(batch: dict[str, np.ndarray], budget: int, rng: np.random.Generator) -> np.ndarray | None:
    """Rows to keep so that exactly ``budget`` remain: whole planned sessions with their follow-ups, in random
    order, then whole sessions without follow-ups, then a prefix of one more session."""
    sess, root = batch["sess"], batch["root"]
    S = len(root)
    own = np.bincount(sess, minlength=S)
    family = np.bincount(root, weights=own, minlength=S).astype(np.int64)
    perm = rng.permutation(np.flatnonzero(root == np.arange(S)))
    cum = np.cumsum(family[perm])
    k = int(np.searchsorted(cum, budget, side="right"))
    keep = np.zeros(S, bool)
    keep[perm[:k]] = True
    keep = keep[root]
    left = budget - (int(cum[k - 1]) if k else 0)
    rest = perm[k:]
    oc = np.cumsum(own[rest])
    if left > (int(oc[-1]) if len(oc) else 0):
        return None  # follow-ups too large a share: the caller simulates more sessions
    kk = int(np.searchsorted(oc, left, side="right"))
    keep[rest[:kk]] = True
    rows = keep[sess]
    left -= int(oc[kk - 1]) if kk else 0
    if left > 0:
        f = int(np.searchsorted(sess, rest[kk]))
        rows[f:f + left] = True
    return rows


def _merge(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(batches) == 1:
        return batches[0]
    offs = np.cumsum([0] + [len(b["root"]) for b in batches])
    out = {k: np.concatenate([b[k] for b in batches]) for k in ("item", "ev", "kind", "t", "users")}
    out["sess"] = np.concatenate([b["sess"] + o for b, o in zip(batches, offs)])
    out["root"] = np.concatenate([b["root"] + o for b, o in zip(batches, offs)])
    return out


@dataclass(frozen=True)
class Chunk:
    index: int
    users: tuple[int, int]  # user index range [lo, hi)
    rows: int               # rows to write, planted duplicates included
    duplicates: int
    no_session: int


def plan_chunks(w: World, events: int, chunk_events: int, cfg: DemoConfig) -> list[Chunk]:
    """Split users into chunks of about ``chunk_events`` rows; quotas and planted dirty rows add up exactly."""
    cs = np.cumsum(w.user_sessions)
    n = max(1, -(-events // max(1, chunk_events)))
    bounds = np.concatenate([[0], np.searchsorted(cs, cs[-1] * np.arange(1, n) / n), [len(cs)]])
    bounds = np.unique(bounds)
    frac = np.concatenate([[0.0], cs[bounds[1:] - 1] / cs[-1]])

    def split(total: int) -> np.ndarray:
        return np.diff(np.round(total * frac).astype(np.int64))

    dirty = events >= 1000
    n_dup = max(int(dirty), round(events * cfg.duplicate_rate)) if cfg.duplicate_rate else 0
    n_ns = max(int(dirty), round(events * cfg.no_session_rate)) if cfg.no_session_rate else 0
    return [Chunk(i, (int(bounds[i]), int(bounds[i + 1])), int(q), int(d), int(s))
            for i, (q, d, s) in enumerate(zip(split(events), split(n_dup), split(n_ns))) if q > 0]


def chunk_rows(w: World, chunk: Chunk, seed: int, cfg: DemoConfig) -> np.ndarray:
    """The chunk's rows (ROW dtype) sorted by time: exactly ``chunk.rows`` of them, dirty rows planted."""
    rng = np.random.default_rng([seed, 1, chunk.index])
    lo, hi = chunk.users
    budget = chunk.rows - chunk.duplicates
    owners = np.repeat(np.arange(lo, hi), w.user_sessions[lo:hi])
    first_visit = np.diff(owners, prepend=-1) != 0
    batches: list[dict[str, np.ndarray]] = []
    while True:
        batches.append(_simulate(w, owners, first_visit, rng, cfg))
        total = sum(len(b["sess"]) for b in batches)
        if total >= budget:
            batch = _merge(batches)
            keep = _keep_rows(batch, budget, rng)
            if keep is not None:
                break
        more = max(0, int((budget - total) / ROWS_PER_SESSION * 1.2)) + 20
        owners = np.sort(rng.integers(lo, hi, more))
        first_visit = np.zeros(more, bool)
    idx = np.flatnonzero(keep)
    sess = batch["sess"][idx]
    rows = np.empty(len(idx), ROW)
    rows["t"], rows["item"], rows["ev"], rows["kind"] = (batch[k][idx] for k in ("t", "item", "ev", "kind"))
    rows["user"] = batch["users"][sess]
    rows["sid"] = (chunk.index << 32) | sess
    rows["flags"] = np.where(w.prod_flaky[rows["item"]] & (rng.random(len(idx)) < .3), BRAND_BLANK, 0)
    n_dirty = min(len(idx), chunk.duplicates + chunk.no_session)
    pick = rng.choice(len(idx), n_dirty, replace=False)
    rows["flags"][pick[chunk.duplicates:]] |= NO_SESSION
    dups = pick[:chunk.duplicates]
    rows = np.concatenate([rows, rows[dups]])
    rank = np.concatenate([np.arange(len(idx)), dups])  # (session, order) rank: duplicates sit next to originals
    return rows[np.lexsort((rank, rows["t"]))]

