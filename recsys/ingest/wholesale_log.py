"""The wholesale demo profile's simulation: a seeded purchase log where customers re-buy staples.

From the seed: a catalog (stock codes in departments, log-normal prices per department, Zipf popularity, some
products introduced part-way and some discontinued, partner products usually bought in the same invoice, like an
item and its refill) and customers (arriving over the period, some churning, favourite departments, a few
wholesale buyers of large quantities). A customer's invoices follow the calendar (weekdays, a closed Christmas
week, a busy November); an invoice holds the personal staples that fell due since the last visit (each on its
own 7-60 day cycle with jitter, sometimes skipped), a few one-off exploratory items and the partners of what is
in it. As in the real UCI Online Retail file, some invoices are cancellations (``C`` + number, negative
quantities), some rows have no CustomerID (guests) and foreign invoices often carry a ``POST`` line.
Invoices are the sessions; there are no views. ``recsys.ingest.demo_wholesale`` writes the log as UCI or
REES46 CSV; the same arguments always give the same log.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_LINES = 300_000
DEFAULT_DAYS = 365
START = np.datetime64("2010-12-01", "D")
FIRST_INVOICE = 536365
CATEGORY_ID_BASE = 2_053_013_560_000_000_000

# category_code | share of exploratory picks | median price | price sigma | nouns
DEPARTMENTS = """
kitchen.storage|12|2.9|.6|JAM JAR,CAKE TIN,LUNCH BOX,STORAGE TIN,MILK BOTTLE,TEA CADDY,BREAD BIN,BISCUIT TIN
kitchen.baking|7|2.1|.6|CAKE CASES,BAKING SET,COOKIE CUTTER,APRON,OVEN GLOVE,CAKE STAND,PIE DISH
home.decor|13|3.8|.7|HANGING HEART,PHOTO FRAME,WALL SIGN,DOORSTOP,CUSHION COVER,WALL CLOCK,MIRROR,COAT RACK
home.lighting|9|2.6|.6|T-LIGHT HOLDER,LANTERN,NIGHT LIGHT,CANDLE,STRING LIGHTS,TEALIGHTS,LAMP
bags|10|1.9|.5|JUMBO BAG,LUNCH BAG,SHOPPER BAG,TOTE BAG,PURSE,WASHBAG,PICNIC BASKET
stationery|9|1.1|.6|NOTEBOOK,PENCILS,GREETING CARD,STICKER SHEET,GIFT TAGS,ERASER,PEN,MEMO BOARD
party|8|0.85|.5|PAPER CUPS,NAPKINS,PAPER PLATES,BUNTING,BALLOONS,PARTY BAGS,STRAWS,CAKE CANDLES
kids.toys|7|2.2|.7|JIGSAW,SKIPPING ROPE,PLAYHOUSE,CHALK,SPINNING TOP,DOLL,TOY CAR,COLOURING BOOK
garden|5|3.9|.6|PLANT POT,WATERING CAN,BIRD FEEDER,GARDEN MARKER,WIND CHIME,HERB POT
bathroom|5|3.1|.6|SOAP DISH,TOILET ROLL HOLDER,TOWEL,SOAP,TOOTHBRUSH HOLDER,LAUNDRY BAG
christmas|8|1.6|.8|CHRISTMAS DECORATION,ADVENT CALENDAR,BAUBLE,STOCKING,CRACKERS,TREE TOPPER,WREATH
supplies|7|0.9|.5|GIFT WRAP,TISSUE PAPER,PAPER BAGS,RIBBON REEL,GLUE DOTS,PARCEL TAPE,CELLOPHANE BAGS
"""
SEASONAL = "christmas"
PATTERNS = ("RED SPOT,BLUE STRIPE,PINK FLORAL,VINTAGE ROSE,WHITE,IVORY,GREEN CHECK,BIRDSONG,WOODLAND,STAR,HEART,"
            "GINGHAM,PAISLEY,LEMON,CHERRY,SILVER,GOLD,RETRO,NORDIC,ORCHARD,BLACK,ZINC,GLASS,ENAMEL").split(",")
SUFFIXES = ("", "", "", "", "SET OF 3", "SET OF 6", "LARGE", "SMALL", "MINI", "JUMBO", "ASSORTED", "PACK OF 12")
COUNTRIES = (("United Kingdom", 88.0), ("Germany", 2.3), ("France", 2.0), ("EIRE", 1.6), ("Spain", .7),
             ("Netherlands", .6), ("Belgium", .6), ("Switzerland", .5), ("Portugal", .4), ("Australia", .3),
             ("Norway", .3), ("Italy", .3), ("Finland", .2), ("Sweden", .2), ("Denmark", .2), ("Japan", .1))
WEEKDAY = np.array([1.0, 1.1, 1.05, 1.25, .85, .15, .6])  # Mon..Sun: a trade store, quiet at weekends
MONTH = np.array([.8, .8, 1.0, .9, 1.0, 1.0, 1.0, 1.0, 1.3, 1.4, 1.8, 1.1])  # Jan..Dec: busy pre-holiday November
XMAS = np.array([.2, .05, .05, .05, .05, .1, .3, .6, 1.5, 2.5, 3.0, 2.0])  # christmas department demand by month
HOURS = np.array([.1, .6, 1.2, 1.6, 1.9, 1.7, 1.5, 1.3, .9, .5, .3, .2, .1, .05])  # 7:00 .. 20:00


@dataclass
class Catalog:
    """Products in index order; the last one is ``POST`` (postage), never drawn as an item."""
    code: list[str]          # (P,) stock codes
    name: list[str]          # (P,) uppercase descriptions
    dept: np.ndarray         # (P,) department index (len(depts) for POST)
    price: np.ndarray        # (P,) unit price
    pop: np.ndarray          # (P,) Zipf popularity (0 for POST)
    intro: np.ndarray        # (P,) first day on sale
    until: np.ndarray        # (P,) first day no longer on sale
    partner: np.ndarray      # (P,) product usually bought with it, or -1
    pack: np.ndarray         # (P,) units per pack: quantities are multiples
    depts: list[str]         # department category codes


@dataclass
class PurchaseLog:
    """The invoice lines in file order, with the catalog they index."""
    catalog: Catalog
    invoice: np.ndarray      # (L,) invoice number
    cancel: np.ndarray       # (L,) bool: a cancellation line (negative quantity)
    minute: np.ndarray       # (L,) minutes since START
    customer: np.ndarray     # (L,) CustomerID, 0 for guests
    country: np.ndarray      # (L,) index into COUNTRIES
    item: np.ndarray         # (L,) product index
    quantity: np.ndarray     # (L,)
    price: np.ndarray        # (L,) unit price (large orders get a trade discount)


def _departments() -> list[tuple[str, float, float, float, list[str]]]:
    rows = [line.split("|") for line in DEPARTMENTS.strip().splitlines()]
    return [(c, float(s), float(m), float(g), n.split(",")) for c, s, m, g, n in rows]


def build_catalog(products: int, days: int, rng: np.random.Generator) -> Catalog:
    """Draw ``products`` stock codes (plus POST) with departments, prices, popularity, life span and partners."""
    deps = _departments()
    D, P = len(deps), products
    share = np.array([d[1] for d in deps])
    dept = rng.choice(D, P, p=share / share.sum())
    med, sig = np.array([d[2] for d in deps]), np.array([d[3] for d in deps])
    price = np.maximum(np.round(med[dept] * np.exp(sig[dept] * rng.standard_normal(P)), 2), .1)
    pop = (rng.permutation(P) + 1.0) ** -.9
    intro = np.where(rng.random(P) < .18, rng.integers(14, max(15, days - 30), P), 0)
    until = np.where((intro == 0) & (rng.random(P) < .1), rng.integers(min(60, days - 1), days, P), days + 1)
    order = np.argsort(dept, kind="stable")
    lo = np.searchsorted(dept[order], dept)
    size = np.bincount(dept, minlength=D)[dept]
    pick = order[lo + rng.integers(0, 1 << 30, P) % size]
    pick = np.where(rng.random(P) < .8, pick, rng.integers(0, P, P))  # most partners share the department
    partner = np.where((rng.random(P) < .25) & (pick != np.arange(P)), pick, -1)
    pattern = rng.integers(0, len(PATTERNS), P)
    has = partner >= 0
    pattern[partner[has]] = pattern[has]  # partners share a design: "RED SPOT LUNCH BOX" + "RED SPOT CAKE TIN"
    noun_u, suffix = rng.random(P), rng.integers(0, len(SUFFIXES), P)
    names, seen = [], {}
    for i in range(P):
        nouns = deps[dept[i]][4]
        name = f"{PATTERNS[pattern[i]]} {nouns[int(noun_u[i] * len(nouns))]} {SUFFIXES[suffix[i]]}".strip()
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} NO {seen[name]}")
    nums = rng.choice(np.arange(10002, 90000), P, replace=False)
    letter = np.where(rng.random(P) < .12, rng.integers(0, 8, P), -1)
    codes = [f"{n}{'ABCDGLPS'[x] if x >= 0 else ''}" for n, x in zip(nums, letter)]
    band = np.digitize(price, [1, 3, 8])
    packs = np.array([[12, 6, 24, 1, 12], [1, 6, 4, 2, 12], [1, 1, 2, 4, 3], [1, 1, 1, 1, 2]])
    pack = packs[band, rng.integers(0, 5, P)]
    return Catalog(code=codes + ["POST"], name=names + ["POSTAGE"], dept=np.append(dept, D),
                   price=np.append(price, 18.0), pop=np.append(pop, 0.0), intro=np.append(intro, 0),
                   until=np.append(until, days + 1), partner=np.append(partner, -1), pack=np.append(pack, 1),
                   depts=[d[0] for d in deps] + ["services.postage"])


def _calendar(days: int) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative visit weight per day with a leading 0, month index per day)."""
    dates = START + np.arange(days)
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    month = dates.astype("datetime64[M]").astype(np.int64) % 12
    dom = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    closed = ((month == 11) & (dom >= 23)) | ((month == 0) & (dom <= 3))
    w = WEEKDAY[weekday] * MONTH[month] * ~closed
    return np.concatenate([[0.0], np.cumsum(w / w.mean())]), month


def _minutes_of_day(n: int, rng: np.random.Generator) -> np.ndarray:
    hour = 7 + np.searchsorted(np.cumsum(HOURS) / HOURS.sum(), rng.random(n))
    return hour * 60 + rng.integers(0, 60, n)


def _draw_in_dept(cat: Catalog, dept: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A product of each given department, by popularity."""
    order = np.argsort(cat.dept, kind="stable")
    cw = np.cumsum(cat.pop[order])
    lo = np.searchsorted(cat.dept[order], dept)
    hi = np.searchsorted(cat.dept[order], dept, side="right") - 1
    base = np.where(lo > 0, cw[np.maximum(lo - 1, 0)], 0.0)
    pos = np.searchsorted(cw, base + rng.random(len(dept)) * (cw[hi] - base), side="right")
    return order[np.clip(pos, lo, hi)]


def _customers(customers: int, guests: int, days: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per customer (guests last): life span, trade buyer, country, visit rate, basket size, department taste."""
    C, D = customers + guests, len(_departments())
    guest = np.arange(C) >= customers
    arrive = np.where(rng.random(C) < .45, 0, rng.integers(0, days - 21, C))  # the existing base, then arrivals
    arrive[guest] = rng.integers(0, days, guests)
    leave = np.minimum(days, arrive + np.maximum(21, rng.exponential(2.0 * days, C).astype(np.int64)))  # churn
    leave[guest] = arrive[guest] + 1
    trade = ~guest & (rng.random(C) < .15)  # wholesale buyers: bigger, more frequent orders
    weights = np.array([w for _, w in COUNTRIES])
    taste = np.array([d[1] for d in _departments()]) * rng.gamma(.6, 1.0, (C, D))
    return {"guest": guest, "arrive": arrive, "leave": leave, "trade": trade,
            "country": np.where(guest, 0, rng.choice(len(COUNTRIES), C, p=weights / weights.sum())),
            "rate": np.exp(rng.normal(np.log(1 / 30), .9, C)) * np.where(trade, 2.0, 1.0),
            "basket": np.exp(rng.normal(np.log(12), .6, C)) * np.where(trade, 1.6, 1.0),
            "taste": taste / taste.sum(1, keepdims=True), "skip": rng.uniform(.05, .3, C),
            "staple_share": rng.uniform(.3, .8, C), "qty": np.exp(rng.normal(np.log(.4), .6, C)) * (1 + 11 * trade)}


def _visits(cu: dict[str, np.ndarray], scale: float, days: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(customer, minute since START) per invoice, sorted: a Poisson process on the calendar in each life span."""
    W, _ = _calendar(days)
    a, b = cu["arrive"], cu["leave"]
    n = np.where(cu["guest"], 1, np.maximum(1, rng.poisson(scale * cu["rate"] * (W[b] - W[a]))))
    ic = np.repeat(np.arange(len(a)), n)
    day = np.minimum(np.searchsorted(W, rng.uniform(W[a][ic], W[b][ic]), side="right") - 1, days - 1)
    minute = day * 1440 + _minutes_of_day(len(ic), rng)
    o = np.lexsort((minute, ic))
    return ic[o], minute[o]


def _staple_lines(cat: Catalog, cu: dict[str, np.ndarray], ic: np.ndarray, minute: np.ndarray, days: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(invoice, product) of staples: each re-bought at the first invoice after it falls due, sometimes skipped."""
    P, C = len(cat.pop) - 1, len(cu["guest"])
    K = max(1, min(40, P // 3))
    cand = np.empty((C, K), np.int64)  # candidates by popularity x taste x time on sale in the life span
    for s in range(0, C, 1000):
        c = np.arange(s, min(C, s + 1000))
        a, b = cu["arrive"][c, None], cu["leave"][c, None]
        overlap = (np.minimum(b, cat.until[:P]) - np.maximum(a, cat.intro[:P])).clip(0) / (b - a)
        key = np.log(cat.pop[:P] * cu["taste"][c][:, cat.dept[:P]] * overlap + 1e-12) + rng.gumbel(size=(len(c), P))
        top = np.argpartition(-key, K - 1, axis=1)[:, :K] if K < P else np.tile(np.arange(P), (len(c), 1))
        cand[c] = np.take_along_axis(top, np.argsort(-np.take_along_axis(key, top, 1), 1), 1)
    cycle = np.exp(rng.uniform(np.log(7), np.log(60), (C, K)))
    # enough staples that those due per visit fill the customer's staple share of a basket
    gap = (cu["leave"] - cu["arrive"]) / np.maximum(1, np.bincount(ic, minlength=C))
    due = np.cumsum(np.minimum(1, gap[:, None] / cycle) * (1 - cu["skip"][:, None]), axis=1)
    n = np.where(cu["guest"], 0, 1 + (due < (cu["staple_share"] * cu["basket"])[:, None]).sum(1))
    sc, sk = np.nonzero(np.arange(K) < np.minimum(n, K)[:, None])
    item, cyc = cand[sc, sk], cycle[sc, sk]
    a, b = cu["arrive"][sc].astype(float), cu["leave"][sc].astype(float)
    begin = np.where(rng.random(len(sc)) < .2, rng.uniform(a, b), a)  # some habits start late ...
    end = np.where(rng.random(len(sc)) < .25, rng.uniform(begin, b), b)  # ... and some stop
    t0 = begin + rng.random(len(sc)) * cyc
    rep = np.repeat(np.arange(len(sc)), np.ceil(np.maximum(end - t0, 0) / (.5 * cyc)).astype(np.int64) + 1)
    step = np.cumsum(cyc[rep] * np.exp(.25 * rng.standard_normal(len(rep))))  # jittered cycles
    t = t0[rep] + step - step[np.searchsorted(rep, rep)]
    rep, t = rep[t < end[rep]], t[t < end[rep]]
    M = (days + 1) * 1440  # several due dates before one visit collapse into one purchase
    j = np.searchsorted(ic * M + minute, sc[rep] * M + (t * 1440).astype(np.int64))
    ok = j < len(ic)
    ok[ok] = ic[j[ok]] == sc[rep][ok]
    pairs = np.unique(j[ok] * (P + 1) + item[rep][ok])
    inv, item = pairs // (P + 1), pairs % (P + 1)
    keep = rng.random(len(inv)) >= cu["skip"][ic[inv]]
    return inv[keep], item[keep]


def _explore_lines(cat: Catalog, cu: dict[str, np.ndarray], ic: np.ndarray, day: np.ndarray, month: np.ndarray,
                   due: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(invoice, product) of one-off items filling each basket: a favourite department or the store's mix."""
    D, N = len(cat.depts) - 1, len(ic)
    size = np.maximum(1, np.round(cu["basket"][ic] * np.exp(.45 * rng.standard_normal(N))))
    n = np.where(cu["guest"][ic], size, np.maximum(size - due, rng.poisson(.6, N))).astype(np.int64)
    inv = np.repeat(np.arange(N), np.maximum(n, due == 0))
    stocked = np.bincount(cat.dept[:-1], minlength=D) > 0
    season = np.where([c == SEASONAL for c in cat.depts[:D]], XMAS[:, None], 1.0) * stocked  # (12, D)
    mix = np.array([d[1] for d in _departments()])
    w = np.where(rng.random(len(inv))[:, None] < .65, cu["taste"][ic[inv]], mix) * season[month[inv]]
    cw = np.cumsum(w, 1)
    dept = (cw < rng.random(len(inv))[:, None] * cw[:, -1:]).sum(1)
    item = _draw_in_dept(cat, dept, rng)
    for _ in range(2):  # redraw what is not on sale that day
        off = (cat.intro[item] > day[inv]) | (cat.until[item] <= day[inv])
        item[off] = _draw_in_dept(cat, dept[off], rng)
    return inv, item


def _simulate(cat: Catalog, cu: dict[str, np.ndarray], days: int, scale: float,
              rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Invoices and their lines (staples, one-offs, partners, postage) for one visit-rate ``scale``."""
    P = len(cat.pop) - 1
    ic, minute = _visits(cu, scale, days, rng)
    day = minute // 1440
    s_inv, s_item = _staple_lines(cat, cu, ic, minute, days, rng)
    e_inv, e_item = _explore_lines(cat, cu, ic, day, _calendar(days)[1][day], np.bincount(s_inv, minlength=len(ic)),
                                   rng)
    inv, item = np.concatenate([s_inv, e_inv]), np.concatenate([s_item, e_item])
    part = cat.partner[item]
    add = (part >= 0) & (rng.random(len(item)) < .6)
    post = np.nonzero((cu["country"][ic] > 0) & (rng.random(len(ic)) < .5))[0]  # foreign invoices pay postage
    inv = np.concatenate([inv, inv[add], post])
    item = np.concatenate([item, part[add], np.full(len(post), P)])
    kind = np.repeat([0, 1, 2, 3], [len(s_inv), len(e_inv), int(add.sum()), len(post)])
    on_sale = (cat.intro[item] <= day[inv]) & (cat.until[item] > day[inv])
    _, first = np.unique(inv * (P + 1) + item, return_index=True)  # one line per product and invoice
    keep = np.sort(first[on_sale[first]])
    return {"inv": inv[keep], "item": item[keep], "kind": kind[keep], "inv_cust": ic, "inv_minute": minute}


def build_wholesale_log(lines: int = DEFAULT_LINES, seed: int = 7, *, customers: int | None = None,
                        products: int | None = None, days: int = DEFAULT_DAYS, guest_share: float = .04,
                        cancel_share: float = .015) -> PurchaseLog:
    """Simulate a wholesale store's invoice lines: exactly ``lines`` rows, about ``cancel_share`` cancellations."""
    customers = customers or max(30, lines // 100)
    products = products or int(np.clip(lines // 75, 60, 4000))
    if lines < 100 or days < 60 or not 3 <= products <= 79_000:  # five-digit stock codes
        raise ValueError(f"lines must be >= 100, days >= 60 and products 3..79,000 (got {lines}, {days}, {products})")
    rng = np.random.default_rng([seed, 0])
    cat = build_catalog(products, days, rng)
    cu = _customers(customers, max(1, round(guest_share * lines / 15)), days, rng)
    n_cancel = round(cancel_share * lines)
    target, scale, best = lines - n_cancel, 1.0, None
    for attempt in range(6):  # visit rates rescaled until the log is just over the size asked for
        sim = _simulate(cat, cu, days, scale, np.random.default_rng([seed, 1, attempt]))
        n = len(sim["inv"])
        if n >= target and (best is None or n < len(best["inv"])):
            best = sim
        if target <= n <= 1.15 * target:
            break
        scale *= target / n * 1.05
    sim, extra = best or sim, len((best or sim)["inv"]) - target
    if extra > 0:  # drop random one-off and partner lines (else any) down to the size asked for
        soft = np.nonzero(np.isin(sim["kind"], (1, 2)))[0]
        drop = rng.choice(soft if len(soft) >= extra else np.arange(len(sim["inv"])), extra, replace=False)
        keep = np.ones(len(sim["inv"]), bool)
        keep[drop] = False
        sim.update({k: sim[k][keep] for k in ("inv", "item", "kind")})
    return _finish(cat, cu, sim, n_cancel, days, rng)


def _finish(cat: Catalog, cu: dict[str, np.ndarray], sim: dict[str, np.ndarray], n_cancel: int, days: int,
            rng: np.random.Generator) -> PurchaseLog:
    """Quantities, prices, cancellation invoices, invoice numbers in time order, and the file's row order."""
    inv, item, ic, post = sim["inv"], sim["item"], sim["inv_cust"], len(cat.pop) - 1
    mult = 1 + rng.poisson(cu["qty"][ic[inv]])
    qty = np.where(item == post, 1, cat.pack[item] * mult)
    price = np.round(cat.price[item] * np.where(mult >= 8, .85, 1.0), 2)  # a trade discount on large lines
    cands = np.nonzero(~cu["guest"][ic[inv]] & (item != post))[0]
    cl = np.sort(rng.choice(cands, min(n_cancel, len(cands)), replace=False))
    orig, grp = np.unique(inv[cl], return_inverse=True)  # one cancellation invoice per invoice it corrects
    o_day, o_tod = np.divmod(sim["inv_minute"][orig], 1440)
    c_day = np.minimum(o_day + rng.integers(0, 8, len(orig)), days - 1)  # the same day or within a week
    c_tod = np.where(c_day == o_day, np.minimum(o_tod + rng.integers(10, 180, len(orig)), 20 * 60 + 59),
                     _minutes_of_day(len(orig), rng))
    inv_min = np.concatenate([sim["inv_minute"], c_day * 1440 + c_tod])
    inv_cust = np.concatenate([ic, ic[orig]])
    number = np.empty(len(inv_min), np.int64)
    number[np.lexsort((np.arange(len(inv_min)), inv_cust, inv_min))] = FIRST_INVOICE + np.arange(len(inv_min))
    line_inv = np.concatenate([inv, len(ic) + grp])
    row = np.lexsort((np.arange(len(line_inv)), number[line_inv]))
    ids = np.where(cu["guest"], 0, 12346 + rng.permutation(len(cu["guest"])))
    line_inv, cust = line_inv[row], inv_cust[line_inv[row]]
    return PurchaseLog(catalog=cat, invoice=number[line_inv], cancel=line_inv >= len(ic), minute=inv_min[line_inv],
                       customer=ids[cust], country=cu["country"][cust], item=np.concatenate([item, item[cl]])[row],
                       quantity=np.concatenate([qty, -qty[cl]])[row], price=np.concatenate([price, price[cl]])[row])
