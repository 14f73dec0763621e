"""The demo store's fixed definition: the category tree, what is bought together, brand price levels, traffic by
day and hour over the two months, and the behaviour knobs (``DemoConfig``).

``parse_catalog`` expands the tree into one entry per category id; its draws use generators keyed by names
(``stable_rng``), so category ids, hidden groups and their brands are the same for every seed.
``recsys.ingest.demo_world`` draws a store from this definition.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

START = np.datetime64("2019-10-01T00:00:00", "s")
DAYS = 61  # 2019-10-01 .. 2019-11-30

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
    traffic_growth: float = 0.1        # daily traffic grows linearly by this share over the 61 days (1.0: the
                                       # real files' Oct/Nov split, 42.4M / 67.5M rows)

def stable_rng(*key: Any) -> np.random.Generator:
    """A generator keyed by names, so catalog structure (category ids) stays fixed across seeds."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def category_id_of(name: str) -> int:
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


def parse_catalog() -> list[dict]:
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
        rng = stable_rng("catalog", name)
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
