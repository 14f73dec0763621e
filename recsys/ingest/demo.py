"""The deterministic synthetic demo store: REES46-format event logs from a small simulated shop.

A world (category tree, brands, products, users with latent tastes) is drawn once from the seed; users'
sessions are then simulated in chunks of users with vectorised numpy: a browsing walk over similar items, a
view -> cart -> purchase funnel, complementary purchases (phone -> case / headphones), repeat purchases of
consumables, day/hour seasonality with November sale spikes, missing brand / category_code the way the real
files have them, and a few planted dirty rows (duplicates, rows without a session).

The same (events, seed, chunk_events, config) always gives a byte-identical file.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys import schema as S
from recsys.artifacts import Progress, no_progress

log = logging.getLogger(__name__)

HEADER = (",".join(S.EVENT_COLUMNS) + "\n").encode()
START = np.datetime64("2019-10-01T00:00:00", "s")
DAYS = 61  # 2019-10-01 .. 2019-11-30
VIEW, CART, PURCHASE, REMOVE = range(4)  # codes into schema.EVENT_TYPES
DEFAULT_CHUNK_EVENTS = 2_000_000

# ---- the category tree ------------------------------------------------------------------------------------
# code | department | share of sessions (%) | median price | price sigma | missing-brand rate | brands (by
# popularity). A code starting with "~" is a hidden group: its category ids have no category_code (like ~32% of
# real rows) and "~name*k" spreads it over k category ids. "+" marks consumables (bought again).
CATALOG = """
electronics.smartphone|electronics|27|300|.6|.01|apple:1 samsung:.9 xiaomi:.55 huawei:.33 oppo:.09 vivo:.06 \
honor:.05 meizu:.04 nokia:.04 realme:.02 oneplus:.02
electronics.clocks|electronics|3.2|120|1.1|.05|apple samsung garmin casio xiaomi amazfit fossil huawei
electronics.audio.headphone|electronics|2.3|60|.8|.04|apple samsung xiaomi sony jbl sennheiser huawei marshall
electronics.video.tv|electronics|1.4|380|.5|.02|samsung lg sony philips xiaomi tcl hisense haier
electronics.telephone|electronics|1.0|25|.6|.05|panasonic nokia alcatel gigaset texet
electronics.tablet|electronics|.8|220|.7|.02|apple samsung lenovo huawei xiaomi
electronics.audio.acoustic|electronics|.4|60|.9|.05|jbl sony marshall xiaomi sven
electronics.audio.subwoofer|electronics|.25|120|.6|.1|pioneer kicx jbl alphard
electronics.camera.photo|electronics|.4|400|.8|.02|canon nikon sony fujifilm
electronics.camera.video|electronics|.2|250|.7|.05|gopro sony xiaomi
computers.notebook|computers|3.2|600|.6|.01|lenovo hp asus acer apple dell msi xiaomi
computers.desktop|computers|.5|500|.6|.2|hp lenovo acer dell
computers.peripherals.mouse|computers|.4|15|.8|.05|logitech a4tech defender razer hp
computers.peripherals.keyboard|computers|.3|25|.8|.05|logitech a4tech defender razer
computers.peripherals.monitor|computers|.5|180|.5|.02|samsung lg aoc dell philips
computers.peripherals.printer|computers|.4|180|.6|.02|hp canon epson brother pantum
computers.components.videocards|computers|.4|300|.6|.02|msi asus gigabyte palit
stationery.cartrige+|computers|.1|30|.6|.1|hp canon epson
appliances.kitchen.refrigerators|appliances|2.2|320|.5|.02|lg samsung bosch indesit beko atlant haier
appliances.kitchen.washer|appliances|1.6|300|.4|.02|lg samsung bosch indesit beko atlant
appliances.environment.vacuum|appliances|1.9|110|.8|.03|samsung lg philips bosch dyson xiaomi vitek redmond
appliances.environment.air_heater|appliances|1.4|40|.6|.1|ballu timberk electrolux polaris scoole
appliances.environment.water_heater|appliances|.6|120|.5|.05|ariston thermex electrolux aqua
appliances.environment.air_conditioner|appliances|.4|350|.5|.05|samsung lg ballu artel midea
appliances.kitchen.microwave|appliances|.5|80|.4|.03|samsung lg midea artel elenberg
appliances.kitchen.kettle|appliances|.6|25|.6|.05|tefal bosch philips redmond polaris vitek
appliances.kitchen.blender|appliances|.4|40|.6|.05|philips bosch braun redmond
appliances.kitchen.coffee_machine|appliances|.3|200|.8|.03|delonghi krups philips bosch
appliances.kitchen.hood|appliances|.4|150|.5|.1|elikor krona bosch gorenje
appliances.kitchen.oven|appliances|.3|350|.5|.05|bosch gorenje electrolux hansa
appliances.kitchen.mixer|appliances|.3|30|.6|.05|bosch philips elenberg redmond
appliances.iron|appliances|.4|35|.6|.03|philips tefal braun polaris
appliances.personal.hair_cutter|appliances|.3|25|.6|.03|philips braun panasonic remington
furniture.living_room.sofa|furniture|.7|450|.6|.6|brw mebelson
furniture.living_room.cabinet|furniture|.8|150|.8|.5|brw mebelson ikea
furniture.bedroom.bed|furniture|.5|300|.6|.5|askona ormatek brw
furniture.kitchen.table|furniture|.4|120|.6|.5|brw ikea
furniture.bathroom.toilet|furniture|.3|180|.5|.2|cersanit santek roca
apparel.shoes|apparel|1.3|85|.4|.35|nike adidas puma reebok asics
apparel.shoes.keds|apparel|1.1|50|.5|.3|nike adidas converse vans
apparel.costume|apparel|.3|60|.6|.5|adidas nike
auto.accessories.player|auto|1.4|70|.6|.05|pioneer kenwood sony jvc alpine prology
auto.accessories.alarm|auto|.8|120|.6|.05|starline pandora sheriff
auto.accessories.videoregister|auto|.5|70|.7|.05|xiaomi neoline prology
construction.tools.drill|construction|.6|80|.7|.05|bosch makita dewalt interskol metabo
construction.tools.saw|construction|.3|90|.7|.05|bosch makita interskol
construction.tools.light|construction|.2|10|.7|.1|lucente philips
construction.components.faucet|construction|.3|60|.6|.15|grohe hansgrohe
kids.toys|kids|.5|20|.9|.3|lego hasbro mattel
kids.carriage|kids|.3|250|.5|.2|cybex chicco
accessories.bag|accessories|.5|35|.9|.3|samsonite xiaomi wenger
sport.bicycle|sport|.3|250|.6|.15|stels forward merida
sport.trainer|sport|.2|300|.6|.2|torneo
medicine.tools.tonometer|medicine|.05|35|.4|.05|omron and
country_yard.lawn_mower|country_yard|.05|200|.5|.1|huter makita
appliances.kitchen.dishwasher|appliances|.3|350|.4|.03|bosch electrolux midea
appliances.kitchen.juicer|appliances|.1|50|.5|.05|philips braun
appliances.kitchen.toster|appliances|.1|30|.5|.05|tefal philips
appliances.kitchen.grill|appliances|.1|60|.5|.05|tefal redmond
appliances.environment.fan|appliances|.15|30|.5|.1|vitek scoole
appliances.sewing_machine|appliances|.1|150|.5|.05|janome brother singer
appliances.personal.massager|appliances|.1|50|.8|.1|beurer
appliances.personal.scales|appliances|.1|20|.5|.05|tanita beurer
computers.components.cpu|computers|.1|200|.6|.02|intel amd
computers.components.memory|computers|.1|50|.5|.02|kingston crucial
computers.components.hdd|computers|.15|60|.5|.02|seagate wd toshiba
computers.components.motherboard|computers|.1|120|.5|.02|asus msi gigabyte
computers.peripherals.camera|computers|.05|40|.5|.05|logitech
electronics.video.projector|electronics|.05|300|.7|.1|epson acer
electronics.audio.microphone|electronics|.05|50|.8|.1|shure
furniture.bedroom.pillow|furniture|.1|20|.5|.5|askona ormatek
furniture.bedroom.blanket|furniture|.1|30|.5|.5|askona
furniture.kitchen.chair|furniture|.15|50|.5|.5|brw
furniture.living_room.chair|furniture|.15|90|.5|.5|brw
apparel.jeans|apparel|.2|40|.5|.4|levis wrangler
apparel.shirt|apparel|.15|30|.5|.5|
kids.skates|kids|.05|50|.5|.2|
kids.swing|kids|.05|60|.5|.3|
sport.snowboard|sport|.05|200|.5|.2|burton
sport.ski|sport|.05|250|.5|.2|fischer atomic
sport.tennis|sport|.05|40|.6|.2|wilson head
construction.tools.welding|construction|.1|150|.5|.05|resanta
construction.tools.pump|construction|.1|100|.6|.1|gardena
construction.tools.generator|construction|.05|300|.5|.1|huter
auto.accessories.compressor|auto|.15|40|.5|.05|berkut
auto.accessories.radar|auto|.1|80|.5|.05|sho-me
accessories.wallet|accessories|.1|30|.6|.3|
accessories.umbrella|accessories|.05|20|.5|.3|
~phone_accessories*12|electronics|3.5|20|.7|.2|deppa baseus spigen borasco hoco remax
~beauty*50+|beauty|5|45|.9|.25|shiseido nivea loreal garnier maybelline estel kapous
~tires*6|auto|3|90|.5|.05|yokohama cordiant nokian michelin bridgestone pirelli
~auto_parts*15|auto|1|60|.8|.4|bosch mann lukoil
~household*20+|home|2.5|25|.7|.3|persil ariel fairy tide finish
~pet*10+|pets|1.5|35|.8|.2|royal_canin whiskas pedigree purina
~coffee*6+|food|1|25|.6|.05|jacobs nescafe lavazza tchibo
~home_decor*50|home|4|150|.9|.5|ikea zeta
~kids_goods*20+|kids|1.5|50|.8|.3|pampers huggies libero
~sport_goods*15|sport|1.5|90|.8|.4|demix torneo
~memory_cards*4|computers|1|20|.6|.02|sandisk kingston transcend samsung
~tool_accessories*6|construction|.7|20|.7|.2|bosch makita
~books*10|stationery|.8|20|.6|.7|eksmo ast
~misc*250|misc|5|200|1.1|.45|
"""

# Bought together: after a purchase in the key, a follow-up in one of these (weight) is likely.
COMPLEMENTS = {
    "electronics.smartphone": {"~phone_accessories": 3, "electronics.audio.headphone": 2, "electronics.clocks": 1,
                               "~memory_cards": .5},
    "electronics.tablet": {"~phone_accessories": 2, "electronics.audio.headphone": 1},
    "computers.notebook": {"computers.peripherals.mouse": 3, "accessories.bag": 2,
                           "computers.peripherals.keyboard": 1, "~memory_cards": .5},
    "computers.desktop": {"computers.peripherals.monitor": 3, "computers.peripherals.keyboard": 2,
                          "computers.peripherals.mouse": 2},
    "electronics.video.tv": {"electronics.audio.acoustic": 2, "electronics.audio.subwoofer": 1},
    "computers.peripherals.printer": {"stationery.cartrige": 3},
    "electronics.camera.photo": {"~memory_cards": 3, "accessories.bag": 1},
    "electronics.camera.video": {"~memory_cards": 3},
    "appliances.kitchen.washer": {"~household": 3},
    "appliances.kitchen.coffee_machine": {"~coffee": 3},
    "construction.tools.drill": {"~tool_accessories": 3},
    "kids.carriage": {"kids.toys": 2, "~kids_goods": 2},
    "auto.accessories.player": {"electronics.audio.subwoofer": 2, "auto.accessories.videoregister": 1},
    "sport.bicycle": {"~sport_goods": 3},
    "~tires": {"~auto_parts": 1},
}

# Price level of a brand relative to its category's median (others: a stable random factor).
BRAND_PRICE = {"apple": 2.6, "samsung": 1.15, "huawei": .9, "xiaomi": .65, "sony": 1.3, "dyson": 2.6, "bosch": 1.2,
               "sennheiser": 1.5, "marshall": 1.5, "garmin": 1.7, "oneplus": 1.3, "delonghi": 1.3, "lego": 1.6,
               "realme": .55, "honor": .7, "meizu": .6, "texet": .6, "defender": .6, "a4tech": .7, "msi": 1.2}

# Traffic by day: weekdays, a mild trend, the 11.11 / mid-November sale (the real Nov file peaks on the
# 15th-17th) and Black Friday; sale days also convert better and discount promo products.
WEEKDAY = np.array([1.0, 1.02, 1.0, .98, .95, .88, .97])  # Mon..Sun
SALE_DAYS = {"2019-11-11": 1.3, "2019-11-15": 1.6, "2019-11-16": 2.3, "2019-11-17": 2.0, "2019-11-18": 1.2,
             "2019-11-28": 1.3, "2019-11-29": 1.9, "2019-11-30": 1.5}
# Traffic by local hour (the store is in UTC+3): night trough, evening peak.
LOCAL_HOUR = np.array([.45, .25, .15, .1, .1, .15, .3, .55, .8, 1., 1.1, 1.15, 1.2, 1.2, 1.2, 1.25, 1.3, 1.4, 1.5,
                       1.6, 1.6, 1.45, 1.1, .75])
UTC_OFFSET_H = 3


@dataclass(frozen=True)
class DemoConfig:
    """Behaviour knobs of the simulated store (defaults tuned to the real Oct 2019 shares)."""
    buy_rate: float = 0.048            # base probability that a session ends in a purchase
    cart_before_purchase: float = 0.8  # share of purchases with a cart event earlier in the session
    abandon_rate: float = 0.035        # probability that a non-buying session carts something
    remove_share: float = 0.0          # share of abandoned carts later removed (the real Oct file has none)
    second_item: float = 0.1           # probability a buying session buys a second viewed item
    complement_same: float = 0.50      # after a purchase with complements: browse one in the same session
    complement_next: float = 0.25      # ... else: a follow-up session on a complement within days
    complement_buy: float = 0.65       # probability the complement browse ends in a purchase
    repeat_rate: float = 0.35          # a consumable purchase is bought again in a later session
    duplicate_rate: float = 3e-4       # planted exact duplicate rows (share of rows)
    no_session_rate: float = 1e-4      # planted rows with an empty user_session
    flaky_brand: float = 0.02          # share of branded products whose brand is missing in some rows
    products_scale: float = 4.4        # products = scale * events ** 0.6 (166k at the Oct size)
    popularity: float = 1.2            # Zipf exponent of product popularity within a category
    session_restart: float = 0.12      # share of sessions cut in two (a new user_session minutes later)


# ---- the world: categories, products, users ---------------------------------------------------------------

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


def _stable_rng(*key: Any) -> np.random.Generator:
    """A generator keyed by names, so catalog structure (category ids) stays fixed across seeds."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _category_id(name: str) -> int:
    """A stable int64 of the real magnitude (most real ids are 2.0530135e18, some 2.09e18-2.18e18)."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    if h % 5:
        return 2053013550000000000 + h % 10 ** 10
    return 2090000000000000000 + h % 90000000000000000


def _made_up_brands(n: int, rng: np.random.Generator) -> list[str]:
    syl = ["ka", "lo", "ver", "mi", "tex", "ra", "zo", "li", "non", "sta", "vi", "ro", "del", "ma", "tor", "ne"]
    return ["".join(rng.choice(syl, size=rng.integers(2, 4))) for _ in range(n)]


def _brand_pool(named: list[str], n_made_up: int, rng: np.random.Generator) -> tuple[list[str], list[float]]:
    """Brands of a category with popularity weights: 'name:w' as given, else Zipf by rank; made-up ones rare."""
    names, weights = [], []
    for r, token in enumerate(named):
        name, _, w = token.partition(":")
        names.append(name)
        weights.append(float(w) if w else (r + 1) ** -1.1)
    made_up = _made_up_brands(n_made_up, rng)
    weights += [.25 * (len(named) + r + 1) ** -1.1 for r in range(len(made_up))]
    return names + made_up, weights


def _parse_catalog() -> list[dict]:
    """One dict per category id; hidden groups expand into several ids with Zipf weights and own brand subsets."""
    cats = []
    for line in CATALOG.strip().splitlines():
        code, dept, share, median, sigma, miss, brands = line.split("|")
        consumable = code.endswith("+")
        code = code.rstrip("+")
        name, _, k = code.partition("*")
        pool = brands.split()
        spec = dict(dept=dept, median=float(median), sigma=float(sigma), miss=float(miss), consumable=consumable,
                    group=name)
        rng = _stable_rng("catalog", name)
        if not name.startswith("~"):
            names, bw = _brand_pool(pool, int(rng.integers(4, 20)), rng)
            cats.append({**spec, "code": name, "weight": float(share), "id_name": name, "brands": names,
                         "brand_w": bw})
            continue
        n = int(k or 1)
        w = 1.0 / np.arange(1, n + 1)
        w = float(share) * w[rng.permutation(n)] / w.sum()
        for i in range(n):
            own = list(rng.choice(pool, size=min(len(pool), int(rng.integers(1, 4))), replace=False)) if pool else []
            names, bw = _brand_pool(own, int(rng.integers(0 if own else 1, 12)), rng)
            cats.append({**spec, "code": None, "weight": float(w[i]), "id_name": f"{name}/{i}",
                         "median": spec["median"] * float(rng.lognormal(0, .3)), "brands": names, "brand_w": bw})
    return cats


def _cum(w: np.ndarray) -> np.ndarray:
    out = np.zeros(len(w) + 1)
    np.cumsum(w, out=out[1:])
    return out


def _day_profile() -> tuple[np.ndarray, np.ndarray]:
    days = START.astype("datetime64[D]") + np.arange(DAYS)
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    w = WEEKDAY[weekday] * (1 + 0.1 * np.arange(DAYS) / DAYS)
    sale = np.zeros(DAYS, bool)
    for d, boost in SALE_DAYS.items():
        i = int((np.datetime64(d) - days[0]).astype(int))
        w[i] *= boost
        sale[i] = True
    return np.cumsum(w) / w.sum(), sale


def build_world(events: int, seed: int, config: DemoConfig = DemoConfig()) -> World:
    """Draw the catalog and the users for a store of about ``events`` rows."""
    rng = np.random.default_rng([seed, 0])
    cats = _parse_catalog()
    C = len(cats)
    brands = sorted({b for c in cats for b in c["brands"]})
    bidx = {b: i for i, b in enumerate(brands)}
    brand_price = np.array([BRAND_PRICE.get(b, float(_stable_rng("brand", b).lognormal(0, .25))) for b in brands])
    weight = np.array([c["weight"] for c in cats])
    weight /= weight.sum()

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
    cat, brand, price, pop, missing, flaky, promo = (np.concatenate(x) for x in zip(*rows))
    order = np.lexsort((price, brand, cat))  # catalog order: category, brand, price -> neighbours are similar
    cat, brand, price, pop, missing, flaky, promo = (x[order] for x in (cat, brand, price, pop, missing, flaky,
                                                                          promo))
    pop = pop * weight[cat] / np.bincount(cat, weights=pop, minlength=C)[cat]
    starts = np.searchsorted(cat, np.arange(C))
    ends = np.searchsorted(cat, np.arange(C), side="right")

    # product ids: each category owns a block of 100k ids somewhere in 1e6..6e7 (real ids cluster like that)
    prod_id = np.empty(P, np.int64)
    block = 10
    for c in _stable_rng("blocks").permutation(C):
        n = ends[c] - starts[c]
        width = -(-2 * n // 100_000)
        offs = np.sort(rng.choice(width * 100_000, size=n, replace=False))
        prod_id[starts[c]:ends[c]] = block * 100_000 + offs[rng.permutation(n)]
        block += width + int(rng.integers(0, 2))

    # complements as CSR over category ids: a group name maps to all its ids, weighted by their popularity
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

    depts = sorted({c["dept"] for c in cats})
    dept = np.array([depts.index(c["dept"]) for c in cats])
    dept_cats = np.argsort(dept, kind="stable")
    dept_ptr = np.searchsorted(dept[dept_cats], np.arange(len(depts) + 1))
    dept_w = np.bincount(dept, weights=weight)
    brand_any = brand.copy()
    brand = np.where(missing, -1, brand)

    day_cdf, day_sale = _day_profile()
    users = _draw_users(events, rng, dept_w, np.bincount(brand_any, weights=pop, minlength=len(brands)), day_cdf)
    hour_w = np.roll(LOCAL_HOUR, -UTC_OFFSET_H)
    return World(
        cat_id=np.array([_category_id(c["id_name"]) for c in cats], np.int64), cat_code=[c["code"] for c in cats],
        cat_group=[c["group"] for c in cats], cat_consumable=np.array([c["consumable"] for c in cats]),
        cat_start=starts, cat_end=ends, comp_ptr=np.array(comp_ptr), comp_cat=np.array(comp_cat, np.int64),
        comp_cw=np.array(comp_cw), dept_cw=np.cumsum(dept_w) / dept_w.sum(), dept_ptr=dept_ptr,
        dept_cats=dept_cats, dept_cat_cw=_cum(weight[dept_cats]), brands=brands, prod_id=prod_id,
        prod_cat=cat.astype(np.int32), prod_brand=brand.astype(np.int32), prod_brand_any=brand_any.astype(np.int32),
        prod_price=price, prod_promo=promo, prod_flaky=flaky & ~missing, cw=_cum(pop),
        by_price=np.lexsort((price, cat)).astype(np.int32), cb_key=cat.astype(np.int64) * len(brands) + brand_any,
        **users, day_cdf=day_cdf, day_sale=day_sale, hour_cdf=np.cumsum(hour_w) / hour_w.sum())


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
    arrival = _draw(day_cdf, 1 - (1 - rng.random(U)) ** (1 / sessions))
    old = rng.random(U) < 0.33
    n_old = int(old.sum())
    order = np.lexsort((rng.random(U), arrival, ~old))  # old users first, then new ones by first visit
    old_ids = 200_000_000 + np.cumsum(rng.integers(1, max(2, 2 * 312_000_000 // max(n_old, 1)), n_old))
    new_ids = 512_000_000 + np.cumsum(rng.integers(1, max(2, 2 * 67_000_000 // max(U - n_old, 1)), U - n_old))
    users = dict(
        user_sessions=sessions, user_arrival=arrival,
        user_dept=_draw(np.cumsum(dept_w) / dept_w.sum(), rng.random((U, 2))).astype(np.int32),
        user_taste=rng.beta(5, 2, U), user_price=rng.beta(2, 2, U),
        user_brand=_draw(np.cumsum(brand_w) / brand_w.sum(), rng.random(U)).astype(np.int32),
        user_loyalty=rng.beta(1.5, 5, U), user_buy=rng.lognormal(-0.32, 0.8, U))
    users = {k: v[order] for k, v in users.items()}
    users["user_id"] = np.concatenate([rng.permutation(old_ids), new_ids]).astype(np.int64)
    return users


# ---- drawing items and categories (vectorised inverse-CDF draws) ------------------------------------------

def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution ending at 1."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


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
    dept = np.where(fav, w.user_dept[users, rng.integers(0, 2, n)], _draw(w.dept_cw, rng.random(n)))
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
    off = _cum(n_views).astype(np.int64)[:-1]
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
    day = np.where(first, arrival, _draw(w.day_cdf, lo + rng.random(n) * (1 - lo)))
    hour = _draw(w.hour_cdf, rng.random(n))
    return day * 86400 + hour * 3600 + rng.integers(0, 3600, n)


def _sessions(w: World, users: np.ndarray, start: np.ndarray, first: np.ndarray, n_views: np.ndarray,
              buy_p: np.ndarray, buy_pos: np.ndarray, kind: np.ndarray, rng: np.random.Generator,
              cfg: DemoConfig, *, planned: bool) -> dict[str, np.ndarray]:
    """Rows of sessions (sorted by session, then order): views, then carts and purchases, with timestamps."""
    S = len(users)
    items = _walk(w, first, n_views, users, rng, switch=.1 if planned else 0.0)
    off = _cum(n_views).astype(np.int64)[:-1]
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
        coff = _cum(k).astype(np.int64)[:-1]
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
class _Chunk:
    index: int
    users: tuple[int, int]  # user index range [lo, hi)
    rows: int               # rows to write, planted duplicates included
    duplicates: int
    no_session: int


def _plan(w: World, events: int, chunk_events: int, cfg: DemoConfig) -> list[_Chunk]:
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
    return [_Chunk(i, (int(bounds[i]), int(bounds[i + 1])), int(q), int(d), int(s))
            for i, (q, d, s) in enumerate(zip(split(events), split(n_dup), split(n_ns))) if q > 0]


def _chunk_rows(w: World, chunk: _Chunk, seed: int, cfg: DemoConfig) -> np.ndarray:
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


# ---- formatting: ROW arrays -> REES46 CSV text (Arrow, no Python loop over rows) ----------------------------

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_DATES = np.frombuffer("".join(f"{START.astype('datetime64[D]') + d} " for d in range(DAYS)).encode(),
                       np.uint8).reshape(DAYS, 11)
FORMAT_BATCH = 1_000_000


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast stable hash of uint64s."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _fixed_width(mat: np.ndarray) -> pa.Array:
    """A string array from an (n, width) uint8 matrix of ASCII."""
    n, width = mat.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(mat.tobytes())])


def _time_strings(t: np.ndarray) -> pa.Array:
    """'2019-10-01 00:00:00 UTC' for seconds since START."""
    day, sod = np.divmod(t.astype(np.int64), 86400)
    mat = np.empty((len(t), 23), np.uint8)
    mat[:, :11] = _DATES[day]
    for col, v in ((11, sod // 3600), (14, sod // 60 % 60), (17, sod % 60)):
        mat[:, col] = 48 + v // 10
        mat[:, col + 1] = 48 + v % 10
    mat[:, [13, 16]] = ord(":")
    mat[:, 19:] = np.frombuffer(b" UTC", np.uint8)
    return _fixed_width(mat)


def _uuid_strings(sid: np.ndarray, seed: int) -> pa.Array:
    """A version-4-looking UUID per session id, a hash of (seed, sid)."""
    key = _mix(np.array([seed], np.uint64))
    s2 = sid.astype(np.uint64) * np.uint64(2)
    b = np.stack([_mix(s2 ^ key), _mix((s2 + np.uint64(1)) ^ key)], axis=1).view(np.uint8)  # (n, 16)
    nib = np.empty((len(sid), 32), np.uint8)
    nib[:, 0::2], nib[:, 1::2] = b >> 4, b & 15
    nib[:, 12] = 4
    nib[:, 16] = 8 | (nib[:, 16] & 3)
    hexd = _HEX[nib]
    mat = np.full((len(sid), 36), ord("-"), np.uint8)
    for a, b_, src in ((0, 8, 0), (9, 13, 8), (14, 18, 12), (19, 23, 16), (24, 36, 20)):
        mat[:, a:b_] = hexd[:, src:src + b_ - a]
    return _fixed_width(mat)


@dataclass
class _Strings:
    """Per-product text columns, built once per world."""
    code: pa.Array    # (P,) category_code or null
    brand: pa.Array   # (P,) brand or null
    price: pa.Array   # (2P,) '%.2f' of the regular then the sale price
    types: pa.Array

    @classmethod
    def of(cls, w: World, seed: int) -> "_Strings":
        codes = [w.cat_code[c] for c in w.prod_cat]
        brands = [w.brands[b] if b >= 0 else None for b in w.prod_brand]
        sale = np.round(w.prod_price * np.random.default_rng([seed, 2]).uniform(.75, .92, len(w.prod_price)), 2)
        prices = [f"{p:.2f}" for p in np.concatenate([w.prod_price, np.maximum(sale, .5)])]
        return cls(pa.array(codes, pa.string()), pa.array(brands, pa.string()), pa.array(prices, pa.string()),
                   pa.array(S.EVENT_TYPES, pa.string()))


def _table(w: World, txt: _Strings, rows: np.ndarray, seed: int) -> pa.Table:
    """The REES46 columns of ``rows`` as strings and int64s, in contract order."""
    item = rows["item"]
    on_sale = w.prod_promo[item] & w.day_sale[rows["t"] // 86400]
    null = pa.scalar(None, pa.string())
    brand = pc.take(txt.brand, item)
    blank = (rows["flags"] & BRAND_BLANK) > 0
    if blank.any():
        brand = pc.if_else(pa.array(blank), null, brand)
    session = _uuid_strings(rows["sid"], seed)
    no_sess = (rows["flags"] & NO_SESSION) > 0
    if no_sess.any():
        session = pc.if_else(pa.array(no_sess), null, session)
    cols = [_time_strings(rows["t"]), pc.take(txt.types, rows["ev"]), pa.array(w.prod_id[item]),
            pa.array(w.cat_id[w.prod_cat[item]]), pc.take(txt.code, item), brand,
            pc.take(txt.price, item + len(w.prod_id) * on_sale), pa.array(w.user_id[rows["user"]]), session]
    return pa.Table.from_arrays(cols, names=list(S.EVENT_COLUMNS))


def _write_rows(f, w: World, txt: _Strings, rows: np.ndarray, seed: int) -> None:
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    for i in range(0, len(rows), FORMAT_BATCH):
        buf = pa.BufferOutputStream()
        pacsv.write_csv(_table(w, txt, rows[i:i + FORMAT_BATCH], seed), buf, opts)
        f.write(buf.getvalue())


@contextlib.contextmanager
def _open_sink(path: Path) -> Iterator[Any]:
    """A binary output file; gzip (mtime 0, no name: deterministic bytes) when the name ends in .gz."""
    with open(path, "wb") as raw:
        if not path.name.endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            yield gz


# ---- summary stats -----------------------------------------------------------------------------------------

class _Stats:
    """Counts accumulated chunk by chunk (users and sessions never span chunks)."""

    def __init__(self, w: World):
        self.w = w
        self.code_missing = np.array([c is None for c in w.cat_code])
        self.rows = self.users = self.sessions = self.brand_missing = self.code_missing_rows = 0
        self.brand_sometimes = self.duplicates = self.no_session = 0
        self.events = np.zeros(4, np.int64)
        self.purchases = np.zeros(4, np.int64)
        self.products = np.zeros(len(w.prod_id), bool)

    def add(self, rows: np.ndarray, chunk: _Chunk) -> None:
        w, item = self.w, rows["item"]
        self.rows += len(rows)
        self.users += len(np.unique(rows["user"]))
        self.sessions += len(np.unique(rows["sid"]))
        self.products[item] = True
        self.events += np.bincount(rows["ev"], minlength=4)
        self.purchases += np.bincount(rows["kind"][rows["ev"] == PURCHASE], minlength=4)
        blank = (rows["flags"] & BRAND_BLANK) > 0
        self.brand_missing += int(((w.prod_brand[item] < 0) | blank).sum())
        self.brand_sometimes += int(blank.sum())
        self.code_missing_rows += int(self.code_missing[w.prod_cat[item]].sum())
        self.duplicates += chunk.duplicates
        self.no_session += chunk.no_session

    def summary(self, seed: int, seconds: float) -> dict[str, Any]:
        n = max(self.rows, 1)
        seen = self.products
        return {
            "rows": self.rows, "users": self.users, "sessions": self.sessions, "products": int(seen.sum()),
            "categories": len(np.unique(self.w.prod_cat[seen])), "brands": len(np.unique(
                self.w.prod_brand[seen & (self.w.prod_brand >= 0)])),
            "event_shares": {t: round(float(c) / n, 5) for t, c in zip(S.EVENT_TYPES, self.events)},
            "missing_shares": {"brand": round(self.brand_missing / n, 5),
                               "category_code": round(self.code_missing_rows / n, 5)},
            "brand_missing_sometimes_rows": self.brand_sometimes,
            "dirty_rows": {"duplicate": self.duplicates, "no_session": self.no_session},
            "purchases": dict(zip(("browse", "complement_same_session", "complement_follow_up", "repeat"),
                                  map(int, self.purchases))),
            "period": [str(START.astype("datetime64[D]")), str(START.astype("datetime64[D]") + DAYS - 1)],
            "seed": seed, "seconds": round(seconds, 2),
        }


# ---- public API -------------------------------------------------------------------------------------------

def write_big_csv(path: Path, events: int = 42_400_000, seed: int = 7, chunk_events: int = DEFAULT_CHUNK_EVENTS,
                  progress: Progress = no_progress, *, config: DemoConfig = DemoConfig()) -> dict[str, Any]:
    """Write the demo store in bounded memory: users simulated chunk by chunk, spilled, merged day by day."""
    if events < 1:
        raise ValueError(f"events must be >= 1 (got {events})")
    t0 = time.perf_counter()
    path = Path(path)
    w = build_world(events, seed, config)
    txt = _Strings.of(w, seed)
    plan = _plan(w, events, chunk_events, config)
    stats = _Stats(w)
    progress(0.02, f"world: {len(w.prod_id):,} products, {len(w.user_id):,} users")
    with _open_sink(path) as f:
        f.write(HEADER)
        if len(plan) == 1:
            rows = _chunk_rows(w, plan[0], seed, config)
            stats.add(rows, plan[0])
            progress(0.6, f"simulated {len(rows):,} rows")
            _write_rows(f, w, txt, rows, seed)
        else:
            _write_chunked(f, w, txt, plan, stats, seed, config, path.parent, progress)
    progress(1.0, f"wrote {stats.rows:,} rows")
    summary = stats.summary(seed, time.perf_counter() - t0)
    log.info("demo store %s: %s rows in %.1f s", path, f"{stats.rows:,}", summary["seconds"])
    return summary


def _write_chunked(f, w: World, txt: _Strings, plan: list[_Chunk], stats: _Stats, seed: int, cfg: DemoConfig,
                   scratch: Path, progress: Progress) -> None:
    """Simulate every chunk to a scratch file (sorted by time), then merge them one day at a time."""
    with tempfile.TemporaryDirectory(prefix=".demo-chunks-", dir=scratch) as tmp:
        files, day_offsets = [Path(tmp) / f"{i}.rows" for i in range(len(plan))], []
        for i, chunk in enumerate(plan):
            rows = _chunk_rows(w, chunk, seed, cfg)
            stats.add(rows, chunk)
            rows.tofile(files[i])
            day_offsets.append(np.searchsorted(rows["t"], np.arange(DAYS + 1) * 86400))
            progress(0.02 + 0.58 * (i + 1) / len(plan), f"simulated chunk {i + 1}/{len(plan)}")
            del rows
        for d in range(DAYS):
            # explicit slice reads, not mmap: mapped pages would count as resident memory
            day = np.concatenate([np.fromfile(p, dtype=ROW, count=int(o[d + 1] - o[d]),
                                              offset=int(o[d]) * ROW.itemsize)
                                  for p, o in zip(files, day_offsets)])
            _write_rows(f, w, txt, day[np.argsort(day["t"], kind="stable")], seed)
            progress(0.6 + 0.4 * (d + 1) / DAYS, f"wrote day {d + 1}/{DAYS}")


def write_demo_csv(path: Path, events: int = 400_000, seed: int = 7, progress: Progress = no_progress, *,
                   config: DemoConfig = DemoConfig()) -> dict[str, Any]:
    """Write the demo store as a REES46 CSV (.csv or .csv.gz); returns summary stats of what was written."""
    return write_big_csv(path, events, seed, chunk_events=max(events, DEFAULT_CHUNK_EVENTS), progress=progress,
                         config=config)
