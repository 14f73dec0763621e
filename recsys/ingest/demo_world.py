"""The demo store's world: one draw per (events, seed) of the catalog (products with brands, prices, popularity
and ids) and of the users (arrival, planned sessions, latent tastes), from ``recsys.ingest.demo_catalog``.

``build_world`` returns it; ``recsys.ingest.demo_sessions`` simulates the users' sessions over it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.ingest.demo_catalog import (BRAND_PRICE, COMPLEMENTS, DAYS, LOCAL_HOUR, SALE_DAYS, START, UTC_OFFSET_H,
                                        WEEKDAY, DemoConfig, category_id_of, parse_catalog, stable_rng)


@dataclass
class World:
    """Everything drawn once per (events, seed): catalog arrays in catalog order and per-user latent tastes."""
    cat_id: np.ndarray        # (C,) int64 category_id
    cat_code: list            # (C,) category_code or None
    cat_group: list           # (C,) code or hidden group name
    cat_consumable: np.ndarray  # (C,) bool
    cat_start: np.ndarray     # (C,) first catalog position of the category's products
    cat_end: np.ndarray       # (C,) one past the last
    comp_ptr: np.ndarray      # (C+1,) CSR rows of complement categories
    comp_cat: np.ndarray      # complement category per CSR entry
    comp_cw: np.ndarray       # row index + cumulative weight within the row (sorted over all rows)
    dept_cw: np.ndarray       # (D,) cumulative department weights
    dept_ptr: np.ndarray      # (D+1,) ranges of dept_cats per department
    dept_cats: np.ndarray     # categories ordered by department
    dept_cat_cw: np.ndarray   # (C+1,) cumulative category weights in dept_cats order
    brands: list              # brand names; product brand codes index it
    prod_id: np.ndarray       # (P,) int64 product_id, in catalog order (category, brand, price)
    prod_cat: np.ndarray      # (P,) int32
    prod_brand: np.ndarray    # (P,) int32 brand code; -1 when the product never has a brand
    prod_brand_any: np.ndarray  # (P,) int32 brand code even where missing (for taste)
    prod_price: np.ndarray    # (P,) float64
    prod_promo: np.ndarray    # (P,) bool: discounted on sale days
    prod_flaky: np.ndarray    # (P,) bool: brand missing in some rows only
    cw: np.ndarray            # (P+1,) cumulative popularity in catalog order
    by_price: np.ndarray      # (P,) catalog positions ordered by (category, price)
    cb_key: np.ndarray        # (P,) category * n_brands + brand, sorted
    user_id: np.ndarray       # (U,) int64, increasing with arrival for new users
    user_arrival: np.ndarray  # (U,) day of the user's first session
    user_sessions: np.ndarray  # (U,) planned sessions
    user_dept: np.ndarray     # (U, 2) favourite departments
    user_taste: np.ndarray    # (U,) probability a session starts in a favourite department
    user_price: np.ndarray    # (U,) preferred price quantile within a category
    user_brand: np.ndarray    # (U,) favourite brand
    user_loyalty: np.ndarray  # (U,) probability a session starts on the favourite brand
    user_buy: np.ndarray      # (U,) purchase propensity (mean 1)
    day_cdf: np.ndarray       # (DAYS,) cumulative traffic by day
    day_sale: np.ndarray      # (DAYS,) bool
    hour_cdf: np.ndarray      # (24,) cumulative traffic by UTC hour


def cumulative(w: np.ndarray) -> np.ndarray:
    out = np.zeros(len(w) + 1)
    np.cumsum(w, out=out[1:])
    return out


def _day_profile(growth: float) -> tuple[np.ndarray, np.ndarray]:
    days = START.astype("datetime64[D]") + np.arange(DAYS)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    w = WEEKDAY[weekday] * (1 + growth * np.arange(DAYS) / DAYS)
    sale = np.zeros(DAYS, bool)
    for d, boost in SALE_DAYS.items():
        i = int((np.datetime64(d) - days[0]).astype(int))
        w[i] *= boost
        sale[i] = True
    return np.cumsum(w) / w.sum(), sale


def build_world(events: int, seed: int, config: DemoConfig = DemoConfig()) -> World:
    """Draw the catalog and the users for a store of about ``events`` rows."""
    rng = np.random.default_rng([seed, 0])
    cats = parse_catalog()
    C = len(cats)
    brands = sorted({b for c in cats for b in c["brands"]})
    weight = np.array([c["weight"] for c in cats])
    weight /= weight.sum()
    cat, brand, price, pop, missing, flaky, promo = _products(cats, brands, weight, events, rng, config)
    starts = np.searchsorted(cat, np.arange(C))
    ends = np.searchsorted(cat, np.arange(C), side="right")
    prod_id = _product_ids(starts, ends, rng)
    comp_ptr, comp_cat, comp_cw = _complements(cats, weight)

    depts = sorted({c["dept"] for c in cats})
    dept = np.array([depts.index(c["dept"]) for c in cats])
    dept_cats = np.argsort(dept, kind="stable")
    dept_ptr = np.searchsorted(dept[dept_cats], np.arange(len(depts) + 1))
    dept_w = np.bincount(dept, weights=weight)
    brand_any = brand.copy()
    brand = np.where(missing, -1, brand)

    day_cdf, day_sale = _day_profile(config.traffic_growth)
    users = _draw_users(events, rng, dept_w, np.bincount(brand_any, weights=pop, minlength=len(brands)), day_cdf)
    hour_w = np.roll(LOCAL_HOUR, -UTC_OFFSET_H)
    return World(
        cat_id=np.array([category_id_of(c["id_name"]) for c in cats], np.int64), cat_code=[c["code"] for c in cats],
        cat_group=[c["group"] for c in cats], cat_consumable=np.array([c["consumable"] for c in cats]),
        cat_start=starts, cat_end=ends, comp_ptr=comp_ptr, comp_cat=comp_cat, comp_cw=comp_cw,
        dept_cw=np.cumsum(dept_w) / dept_w.sum(), dept_ptr=dept_ptr,
        dept_cats=dept_cats, dept_cat_cw=cumulative(weight[dept_cats]), brands=brands, prod_id=prod_id,
        prod_cat=cat.astype(np.int32), prod_brand=brand.astype(np.int32), prod_brand_any=brand_any.astype(np.int32),
        prod_price=price, prod_promo=promo, prod_flaky=flaky & ~missing, cw=cumulative(pop),
        by_price=np.lexsort((price, cat)).astype(np.int32), cb_key=cat.astype(np.int64) * len(brands) + brand_any,
        **users, day_cdf=day_cdf, day_sale=day_sale, hour_cdf=np.cumsum(hour_w) / hour_w.sum())


def _products(cats: list[dict], brands: list[str], weight: np.ndarray, events: int, rng: np.random.Generator,
              config: DemoConfig) -> tuple[np.ndarray, ...]:
    """Per product in catalog order (category, brand, price; neighbours are similar): category, brand code,
    price, popularity (summing to each category's weight), brand missing, brand flaky, promo."""
    C = len(cats)
    bidx = {b: i for i, b in enumerate(brands)}
    brand_price = np.array([BRAND_PRICE.get(b, float(stable_rng("brand", b).lognormal(0, .25))) for b in brands])
    P = max(3 * C, int(config.products_scale * events ** 0.6))
    n_per = 2 + rng.multinomial(P - 2 * C, weight ** 0.7 / (weight ** 0.7).sum())
    rows = []  # per category: (cat, brand, price, popularity, missing, flaky, promo)
    for c, (spec, n) in enumerate(zip(cats, n_per)):
        pool = np.array([bidx[b] for b in spec["brands"]])
        bw = np.array(spec["brand_w"])
        pick = rng.choice(len(pool), size=n, p=bw / bw.sum())
        brand = pool[pick]
        price = spec["median"] * brand_price[brand] * rng.lognormal(0, spec["sigma"], n)
        # Zipf popularity by a brand-weighted random order: best sellers are mostly of the big brands
        rank = np.empty(n)
        rank[np.argsort(-np.log(rng.random(n)) * np.sqrt(bw.max() / bw[pick]))] = np.arange(1, n + 1)
        pop = 1.0 / (rank + 2) ** config.popularity  # Zipf-Mandelbrot: a few best sellers, not one
        rows.append((np.full(n, c), brand, np.maximum(np.round(price, 2), 0.77), pop,
                     rng.random(n) < spec["miss"], rng.random(n) < config.flaky_brand, rng.random(n) < 0.35))
    cols = [np.concatenate(x) for x in zip(*rows)]
    order = np.lexsort((cols[2], cols[1], cols[0]))
    cat, brand, price, pop, missing, flaky, promo = (x[order] for x in cols)
    pop = pop * weight[cat] / np.bincount(cat, weights=pop, minlength=C)[cat]
    return cat, brand, price, pop, missing, flaky, promo


def _product_ids(starts: np.ndarray, ends: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each category owns a block of 100k ids somewhere in 1e6..6e7 (real ids cluster like that)."""
    prod_id = np.empty(int(ends[-1]) if len(ends) else 0, np.int64)
    block = 10
    for c in stable_rng("blocks").permutation(len(starts)):
        n = ends[c] - starts[c]
        width = -(-2 * n // 100_000)
        offs = np.sort(rng.choice(width * 100_000, size=n, replace=False))
        prod_id[starts[c]:ends[c]] = block * 100_000 + offs[rng.permutation(n)]
        block += width + int(rng.integers(0, 2))
    return prod_id


def _complements(cats: list[dict], weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complements as CSR over category ids: a group name maps to all its ids, weighted by their popularity."""
    by_group: dict[str, list[int]] = {}
    for c, spec in enumerate(cats):
        by_group.setdefault(spec["group"], []).append(c)
    comp_ptr, comp_cat, comp_cw = [0], [], []
    for c, spec in enumerate(cats):
        targets, tw = [], []
        for g, gw in COMPLEMENTS.get(spec["group"], {}).items():
            ids = by_group[g]
            targets += ids
            tw += list(gw * weight[ids] / weight[ids].sum())
        comp_cat += targets
        comp_cw += list(c + np.cumsum(tw) / sum(tw)) if tw else []  # row + cumulative share: globally sorted
        comp_ptr.append(len(comp_cat))
    return np.array(comp_ptr), np.array(comp_cat, np.int64), np.array(comp_cw)


ROWS_PER_SESSION = 3.95  # measured rows per planned session (views, funnel, same-session complements, follow-ups)
SESSIONS_PER_USER = 3.5  # mean planned sessions per user


def _draw_users(events: int, rng: np.random.Generator, dept_w: np.ndarray, brand_w: np.ndarray,
                day_cdf: np.ndarray) -> dict:
    """Users with latent tastes; a third existed before October (lower ids), new ids grow with the first visit."""
    U = max(20, int(round(1.06 * events / (ROWS_PER_SESSION * SESSIONS_PER_USER))))
    one_off = rng.random(U) < 0.55
    sessions = np.where(one_off, 1 + rng.poisson(0.25, U),
                        1 + np.minimum(np.round(rng.lognormal(np.log(3.5), 0.9, U)), 150)).astype(np.int64)
    # the first day is the minimum of the user's session days (drawn directly), so daily traffic keeps the
    # day profile; the other sessions are drawn on or after it
    arrival = draw_from_cdf(day_cdf, 1 - (1 - rng.random(U)) ** (1 / sessions))
    old = rng.random(U) < 0.33
    n_old = int(old.sum())
    order = np.lexsort((rng.random(U), arrival, ~old))  # old users first, then new ones by first visit
    old_ids = 200_000_000 + np.cumsum(rng.integers(1, max(2, 2 * 312_000_000 // max(n_old, 1)), n_old))
    new_ids = 512_000_000 + np.cumsum(rng.integers(1, max(2, 2 * 67_000_000 // max(U - n_old, 1)), U - n_old))
    users = dict(
        user_sessions=sessions, user_arrival=arrival,
        user_dept=draw_from_cdf(np.cumsum(dept_w) / dept_w.sum(), rng.random((U, 2))).astype(np.int32),
        user_taste=rng.beta(5, 2, U), user_price=rng.beta(2, 2, U),
        user_brand=draw_from_cdf(np.cumsum(brand_w) / brand_w.sum(), rng.random(U)).astype(np.int32),
        user_loyalty=rng.beta(1.5, 5, U), user_buy=rng.lognormal(-0.32, 0.8, U))
    users = {k: v[order] for k, v in users.items()}
    users["user_id"] = np.concatenate([rng.permutation(old_ids), new_ids]).astype(np.int64)
    return users


def draw_from_cdf(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution ending at 1."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
