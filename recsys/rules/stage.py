"""Product affinity: baskets -> frequent itemsets (mlxtend Apriori or FP-growth) -> association rules.

Baskets are the distinct items of one session (or one user and UTC day) within a scope of events (purchases,
purchases + carts, or views). Items are products, category leaves, top-level categories or brands.

Support is always relative to **all** baskets of the scope (those with at least one item at the granularity),
although only baskets holding two or more frequent items are one-hot encoded: an itemset of two or more items can
only occur in those, and single-item supports are counted exactly in DuckDB. So ``support(X) = baskets containing
X / all baskets``, as in the textbook, while the boolean matrix stays small.

The stage ``rules`` stores the default rules, their items (readable labels) and category complements; other
thresholds are mined on demand by :func:`mine_rules`.
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.ingest.adapters import load_product_names
from recsys.artifacts import (Progress, StageResult, connect, no_progress, read_manifest, require_stage, run_stage,
                              upstream_fingerprint)
from recsys.engine import DUCKDB, Dialect, as_engine

log = logging.getLogger(__name__)

STAGE = "rules"
RULES_FILE, ITEMS_FILE, COMPLEMENTS_FILE = "rules.parquet", "items.parquet", "category_complements.parquet"
SCOPES: dict[str, tuple[str, ...]] = {
    "purchases": (S.PURCHASE,), "purchases_carts": (S.PURCHASE, S.CART), "views": (S.VIEW,)}
BASKETS = ("session", "user_day")
GRANULARITIES = ("product", "category", "top_category", "brand")
ALGORITHMS = ("apriori", "fpgrowth")
RULE_COLUMNS = ["antecedent", "consequent", "antecedent_items", "consequent_items", "antecedent_len",
                "consequent_len", "baskets", "support", "antecedent_support", "consequent_support", "confidence",
                "lift", "leverage", "conviction"]
ITEM_COLUMNS = {"item": str, "baskets": "int64", "support": float, "label": str, "top_category": str}
BOOL_OPS_PER_S = 3e8  # low-memory apriori's numpy throughput on this machine kind, kept conservative
DENSE_LIMIT_MB = 768  # a larger one-hot is built sparse


@dataclass(frozen=True)
class RuleParams:
    """What a basket is and the mining thresholds (defaults give tens to a few hundred rules on store data)."""
    basket: str = "session"          # session | user_day
    scope: str = "views"             # purchases | purchases_carts | views (co-view affinity)
    granularity: str = "product"     # product | category | top_category | brand
    min_support: float | None = None  # share of all baskets of the scope; None = auto (see auto_support)
    min_confidence: float = 0.05
    min_lift: float = 1.5
    max_len: int = 3                 # largest itemset (antecedent + consequent)
    algorithm: str = "apriori"       # apriori | fpgrowth (same rules, usually faster)
    min_baskets: int = 3             # an itemset must occur in at least this many baskets (noise floor)
    target_pairs: int = 100          # auto support: the support of the target_pairs-th most frequent pair
    max_itemsets: int = 50_000       # guard: estimated frequent itemsets
    max_memory_mb: int = 2_048       # guard: estimated one-hot + candidate memory
    max_seconds: float = 60.0        # guard: estimated mining time

    def validate(self) -> "RuleParams":
        """Return self, or raise ValueError naming the bad setting."""
        for name, allowed in (("basket", BASKETS), ("scope", tuple(SCOPES)), ("granularity", GRANULARITIES),
                              ("algorithm", ALGORITHMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if self.min_support is not None and not 0.0 < self.min_support <= 1.0:
            raise ValueError(f"min_support must be in (0, 1], got {self.min_support}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.min_lift < 0 or self.max_len < 2 or self.min_baskets < 1 or self.target_pairs < 1:
            raise ValueError("min_lift must be >= 0, max_len >= 2, min_baskets and target_pairs >= 1")
        return self


@dataclass
class RulesResult:
    """Mined rules, their items (labels, support, colour group) and the facts of the run."""
    rules: pd.DataFrame
    items: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


# ---- baskets ------------------------------------------------------------------------------------------------

def _item_sql(granularity: str) -> tuple[str, str]:
    """(item key expression, extra WHERE filter) for a granularity; unknown brands/top levels are left out."""
    if granularity == "product":
        return S.PRODUCT_ID, "TRUE"  # typed: cast to text only for the few frequent items
    if granularity == "category":
        return S.category_key_sql(), "TRUE"
    if granularity == "top_category":
        return f"split_part({S.CATEGORY_CODE}, '.', 1)", f"{S.CATEGORY_CODE} <> '{S.UNKNOWN_CATEGORY}'"
    return S.BRAND, f"{S.BRAND} <> '{S.UNKNOWN_BRAND}'"


def _basket_sql(basket: str, d: Dialect = DUCKDB) -> str:
    """An integer basket key: 64-bit hash of the session id (collisions ~1e-5 at 10M sessions), or user x UTC day."""
    if basket == "session":
        return d.hash64(S.USER_SESSION)
    return f"{S.USER_ID} * 100000 + {d.day_number(S.EVENT_TIME)}"  # the session time zone is UTC


def scope_counts_sql(params: RuleParams, d: Dialect = DUCKDB) -> str:
    """(basket b, item i, events n) of every basket-item pair in the scope: the one scan of the events."""
    item, where = _item_sql(params.granularity)
    types = ", ".join(f"'{t}'" for t in SCOPES[params.scope])
    return (f"SELECT b, i, count(*) AS n FROM (SELECT {_basket_sql(params.basket, d)} AS b, {item} AS i "
            f"FROM events WHERE {S.EVENT_TYPE} IN ({types}) AND {where}) GROUP BY b, i")


def count_baskets(con, params: RuleParams, scope: str | None = None) -> int:
    """The number of baskets of the scope; also creates temp tables ``scope_bi(b, i, n)`` (from ``scope``, a
    table of :func:`scope_counts_sql` rows, when given: the Spark engine's) and ``item_events(i, n)``."""
    source = f"SELECT * FROM {scope}" if scope else scope_counts_sql(params)
    con.execute(f"CREATE OR REPLACE TEMP TABLE scope_bi AS {source}")
    con.execute("CREATE OR REPLACE TEMP TABLE item_events AS SELECT i, sum(n) AS n FROM scope_bi GROUP BY i")
    return int(con.execute("SELECT count(DISTINCT b) FROM scope_bi").fetchall()[0][0])


def load_basket_items(con, params: RuleParams, *, min_events: int = 1, top: int | None = None) -> None:
    """Temp table ``basket_items(b, i)``: distinct items per basket, for candidate items only.

    Candidates are the items with >= ``min_events`` events (an item in k baskets has >= k events, so no frequent
    item is lost), or the ``top`` items by events. Skipping the rest makes the later steps several times smaller.
    """
    pick = f"ORDER BY n DESC, i LIMIT {int(top)}" if top else f"WHERE n >= {int(min_events)}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE cand AS SELECT i FROM item_events {pick}")
    con.execute("""CREATE OR REPLACE TEMP TABLE basket_items AS
        SELECT b, i FROM scope_bi WHERE i IN (SELECT i FROM cand)""")


def _min_count(params: RuleParams, n_baskets: int) -> int:
    return max(params.min_baskets, math.ceil(params.min_support * n_baskets - 1e-9))


def frequent_baskets(con, n_baskets: int, params: RuleParams) -> tuple[pd.DataFrame, int, int]:
    """(frequent items with counts, min count, rows of temp table ``multi``: baskets with >= 2 frequent items)."""
    min_count = _min_count(params, n_baskets)
    items = con.execute(f"""CREATE OR REPLACE TEMP TABLE freq AS
        SELECT i, count(*) AS n, (row_number() OVER (ORDER BY count(*) DESC, i) - 1)::INTEGER AS code
        FROM basket_items GROUP BY i HAVING count(*) >= {min_count};
        SELECT i::VARCHAR AS item, n AS baskets FROM freq ORDER BY code""").df()
    con.execute("""CREATE OR REPLACE TEMP TABLE multi AS
        WITH f AS (SELECT bi.b, freq.code, count(*) OVER (PARTITION BY bi.b) AS k
                   FROM basket_items bi JOIN freq USING (i))
        SELECT b, code, k FROM f WHERE k >= 2""")
    return items, min_count, int(con.execute("SELECT count(*) FROM multi").fetchall()[0][0])


def n_rows_multi(con) -> int:
    """How many baskets hold two or more frequent items (the rows FP-growth and Apriori mine)."""
    return int(con.execute("SELECT count(DISTINCT b) FROM multi").fetchall()[0][0])


def basket_codes(con) -> pd.DataFrame:
    """(row, code) of every frequent item of the multi-item baskets, rows numbered 0..B-1."""
    return con.execute("SELECT dense_rank() OVER (ORDER BY b) - 1 AS row, code FROM multi").df()


AUTO_TOP_ITEMS = 3_000   # auto support counts pairs among this many most frequent items
AUTO_MAX_PAIR_ROWS = 50e6
PAIR_WORK_LIMIT = 50e6   # guard: pair occurrences DuckDB may count before mining (seconds, not minutes)


def auto_support(con, n_baskets: int, params: RuleParams) -> float:
    """The support of the ``target_pairs``-th most frequent item pair (never below ``min_baskets`` baskets).

    A fixed share gives thousands of rules on a small store and none on a big one; the k-th pair's support keeps
    the default at tens to a few hundred rules at any size. Pairs are counted among the most frequent items only
    (exact unless the k-th pair is rarer than the item ranked AUTO_TOP_ITEMS).
    """
    top = AUTO_TOP_ITEMS
    while True:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE auto_bi AS
            WITH top AS (SELECT i FROM basket_items GROUP BY i ORDER BY count(*) DESC, i LIMIT {top})
            SELECT b, i, count(*) OVER (PARTITION BY b) AS k FROM basket_items JOIN top USING (i)""")
        work = float(con.execute("SELECT coalesce(sum(k - 1) / 2, 0) FROM auto_bi").fetchall()[0][0])
        if work <= AUTO_MAX_PAIR_ROWS or top <= 50:
            break
        top //= 4
    counts = con.execute(f"""SELECT count(*) AS n FROM auto_bi x JOIN auto_bi y ON x.b = y.b AND x.i < y.i
        WHERE x.k >= 2 GROUP BY x.i, y.i ORDER BY n DESC LIMIT {int(params.target_pairs)}""").df()["n"]
    con.execute("DROP TABLE auto_bi")
    kth = int(counts.iloc[-1]) if len(counts) else params.min_baskets
    return min(1.0, max(kth, params.min_baskets) / n_baskets)


# ---- guards -------------------------------------------------------------------------------------------------

def _suggest(params: RuleParams, factor: float) -> str:
    better = params.min_support * max(2.0, factor)
    return f"raise min support to at least {better:.2g} (now {params.min_support:.2g}) or pick auto"


def check_guards(con, n_items: int, n_rows: int, min_count: int, n_baskets: int, params: RuleParams) -> dict:
    """Estimate itemsets, memory and time before mining; raise ValueError (suggesting a higher support) if too big."""
    per = con.execute("SELECT k, count(*) / k AS baskets FROM multi GROUP BY k").df()
    ks, nb = per["k"].to_numpy(float), per["baskets"].to_numpy(float)
    pair_work = float((nb * ks * (ks - 1) / 2).sum())
    if pair_work > PAIR_WORK_LIMIT:
        raise ValueError(f"These settings would count {pair_work:,.0f} item pairs in baskets (limit "
                         f"{PAIR_WORK_LIMIT:,.0f}): {_suggest(params, math.sqrt(pair_work / PAIR_WORK_LIMIT))}, "
                         "or use a coarser granularity.")
    pairs = con.execute(f"""SELECT a.code AS x, b.code AS y, count(*) AS n FROM multi a JOIN multi b
        ON a.b = b.b AND a.code < b.code GROUP BY 1, 2 HAVING count(*) >= {min_count}""").df()
    bound = len(pairs) + sum(float((nb * _comb(ks, k)).sum()) / min_count for k in range(3, params.max_len + 1))
    est_itemsets = n_items + min(bound, _candidates(pairs, params.max_len) + len(pairs))
    n_multi = int(nb.sum())
    dense_mb = n_multi * n_items / 2**20
    sparse = dense_mb > DENSE_LIMIT_MB
    onehot_mb = n_rows * 17 / 2**20 if sparse else dense_mb
    pair_rows = float(pairs["n"].sum()) if params.max_len >= 3 else 0.0
    if params.algorithm == "apriori":  # low-memory apriori: per prefix, a column scan plus the matching rows
        ops = n_items * 2 * n_multi + n_rows * n_items + len(pairs) * 3 * n_multi + pair_rows * n_items
        if sparse:  # sparse prefixes densify the candidate columns: far slower
            ops += (n_items + len(pairs)) * n_multi * n_items / 2
        seconds = ops / BOOL_OPS_PER_S
    else:
        seconds = n_multi * 2e-5 + est_itemsets * 2e-4
    facts = {"baskets": n_baskets, "multi_item_baskets": n_multi, "frequent_items": n_items,
             "frequent_pairs": len(pairs), "min_count": min_count, "estimated_itemsets": int(est_itemsets),
             "estimated_memory_mb": round(onehot_mb, 1), "estimated_seconds": round(seconds, 2), "sparse": sparse}
    if est_itemsets > params.max_itemsets:
        counts = np.sort(pairs["n"].to_numpy())
        k = min(len(counts), max(1, params.max_itemsets // 4))
        target = max(counts[-k] / n_baskets if k else 0.0, params.min_support * 2)
        raise ValueError(f"These settings would give about {est_itemsets:,.0f} frequent itemsets "
                         f"(limit {params.max_itemsets:,}): raise min support to at least {target:.2g} "
                         f"(now {params.min_support:.2g}), pick auto, or lower the max itemset length.")
    if onehot_mb > params.max_memory_mb:
        raise ValueError(f"The basket matrix would need about {onehot_mb:,.0f} MB (limit {params.max_memory_mb:,}): "
                         f"{_suggest(params, onehot_mb / max(params.max_memory_mb, 1))}.")
    if seconds > params.max_seconds:
        raise ValueError(f"Mining would take about {seconds:,.0f} s (limit {params.max_seconds:.0f} s): "
                         f"{_suggest(params, math.sqrt(seconds / params.max_seconds))}, or use FP-growth.")
    return facts


def _comb(n: np.ndarray, k: int) -> np.ndarray:
    out = np.ones_like(n)
    for j in range(k):
        out = out * (n - j) / (j + 1)
    return np.clip(out, 0, None)


def _candidates(pairs: pd.DataFrame, max_len: int) -> float:
    """Apriori's level-3 candidates (pairs sharing a first item), 0 when max_len < 3."""
    if max_len < 3 or pairs.empty:
        return 0.0
    g = pairs.groupby("x").size().to_numpy(float)
    return float((g * (g - 1) / 2).sum())


# ---- mining -------------------------------------------------------------------------------------------------

def onehot(codes: pd.DataFrame, items: list[str]) -> pd.DataFrame:
    """Boolean basket x item frame from (row, code) pairs; sparse when dense would exceed DENSE_LIMIT_MB."""
    n_rows = int(codes["row"].max()) + 1 if len(codes) else 0
    rows, cols = codes["row"].to_numpy(np.int64), codes["code"].to_numpy(np.int64)
    if n_rows * len(items) > DENSE_LIMIT_MB * 2**20:
        from scipy import sparse
        m = sparse.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n_rows, len(items)))
        return pd.DataFrame.sparse.from_spmatrix(m, columns=items)
    dense = np.zeros((n_rows, len(items)), dtype=bool)
    dense[rows, cols] = True
    return pd.DataFrame(dense, columns=items, copy=False)  # row-major: low-memory apriori gathers rows


def frequent_itemsets(matrix: pd.DataFrame, min_count: int, params: RuleParams) -> pd.DataFrame:
    """Itemsets in >= ``min_count`` rows of ``matrix`` (columns: support within the matrix, itemsets)."""
    from mlxtend.frequent_patterns import apriori, fpgrowth
    if len(matrix) < min_count:  # too few multi-item baskets for any pair to be frequent
        return pd.DataFrame({"support": pd.Series(dtype=float), "itemsets": pd.Series(dtype=object)})
    min_support = (min_count - 0.5) / len(matrix)  # counts are integers: avoid float ties at the threshold
    if params.algorithm == "fpgrowth":
        return fpgrowth(matrix, min_support=min_support, use_colnames=True, max_len=params.max_len)
    # low_memory scans only the rows holding each prefix: the default materialises baskets x candidates
    return apriori(matrix, min_support=min_support, use_colnames=True, max_len=params.max_len, low_memory=True)


def rules_from_itemsets(itemsets: pd.DataFrame, n_rows: int, item_counts: pd.Series, n_baskets: int,
                        params: RuleParams) -> pd.DataFrame:
    """Association rules with supports relative to all ``n_baskets`` baskets, filtered by confidence and lift."""
    from mlxtend.frequent_patterns import association_rules
    sets = itemsets[itemsets["itemsets"].map(len) >= 2]
    if sets.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RULE_COLUMNS})
    counts = (sets["support"] * n_rows).round()
    singles = pd.DataFrame({"support": item_counts.to_numpy(float),
                            "itemsets": [frozenset([i]) for i in item_counts.index]})
    fixed = pd.concat([singles, pd.DataFrame({"support": counts / n_baskets, "itemsets": sets["itemsets"]})],
                      ignore_index=True)
    fixed["support"] = fixed["support"].where(fixed["itemsets"].map(len) >= 2, fixed["support"] / n_baskets)
    r = association_rules(fixed, num_itemsets=n_baskets, metric="confidence", min_threshold=params.min_confidence,
                          return_metrics=["antecedent support", "consequent support", "support", "confidence",
                                          "lift", "leverage", "conviction"])
    r = r[r["lift"] >= params.min_lift].rename(columns={"antecedent support": "antecedent_support",
                                                        "consequent support": "consequent_support"})
    r["antecedent_items"] = r["antecedents"].map(sorted)
    r["consequent_items"] = r["consequents"].map(sorted)
    r["antecedent_len"] = r["antecedent_items"].map(len).astype("int32")
    r["consequent_len"] = r["consequent_items"].map(len).astype("int32")
    r["baskets"] = (r["support"] * n_baskets).round().astype("int64")
    r["antecedent"] = r["consequent"] = ""
    r = r.sort_values(["lift", "confidence", "baskets"], ascending=False, kind="stable")
    return r[RULE_COLUMNS].reset_index(drop=True)


# ---- labels -------------------------------------------------------------------------------------------------

def item_labels(con, items: pd.DataFrame, granularity: str, names: pd.DataFrame | None = None) -> pd.DataFrame:
    """Readable label (plain text: shop data, escaped where it is drawn) and top-level category (the colour group)
    for each item key; products with a name in ``names`` (``recsys.ingest.adapters.load_product_names``) are labelled by
    it and their stock code."""
    con.register("want", items[["item"]])
    if granularity == "product":
        df = con.execute(f"""SELECT w.item, mode({S.BRAND}) AS brand, mode({S.CATEGORY_CODE}) AS category_code,
                   coalesce(median({S.PRICE}) FILTER (WHERE {S.PRICE} > 0), 0.0) AS price
            FROM want w JOIN events e ON e.{S.PRODUCT_ID} = w.item::BIGINT GROUP BY w.item""").df()
        df["label"] = _product_labels(df, names)
        df["top_category"] = df["category_code"].str.split(".").str[0]
    elif granularity == "brand":
        df = con.execute(f"""SELECT w.item, mode(split_part({S.CATEGORY_CODE}, '.', 1))
                FILTER (WHERE {S.CATEGORY_CODE} <> '{S.UNKNOWN_CATEGORY}') AS top_category
            FROM want w JOIN events e ON e.{S.BRAND} = w.item GROUP BY w.item""").df()
        df["label"] = df["item"]
    else:
        df = items[["item"]].copy()
        df["label"] = df["item"].where(~df["item"].str.startswith("id:"), "category " + df["item"].str[3:])
        df["top_category"] = df["item"].str.split(".").str[0].where(~df["item"].str.startswith("id:"))
    con.unregister("want")
    df["top_category"] = df["top_category"].fillna(S.UNKNOWN_CATEGORY).replace("", S.UNKNOWN_CATEGORY)
    keep = [c for c in ("item", "label", "top_category", "brand", "category_code", "price") if c in df.columns]
    return items.merge(df[keep], on="item", how="left")


def _product_labels(df: pd.DataFrame, names: pd.DataFrame | None) -> pd.Series:
    """``name · brand · leaf · #code · $price`` (unknown brand and category left out) for a product with a name,
    else ``brand · leaf · #id · $price`` with "no brand" / "uncategorised"; the code or id keeps labels distinct."""
    leaf = df["category_code"].str.rsplit(".", n=1).str[-1]
    price = " · $" + df["price"].map("{:,.2f}".format)
    plain = (df["brand"].replace(S.UNKNOWN_BRAND, "no brand") + " · "
             + leaf.replace(S.UNKNOWN_CATEGORY, "uncategorised") + " · #" + df["item"] + price)
    if names is None or names.empty:
        return plain
    named = names[names["name"] != ""].drop_duplicates("product_id")
    named = named.set_index(named["product_id"].astype(str))
    name, code = df["item"].map(named["name"]), df["item"].map(named["stock_code"]).fillna("")
    brand = (" · " + df["brand"]).where(df["brand"] != S.UNKNOWN_BRAND, "")
    cat = (" · " + leaf).where(df["category_code"] != S.UNKNOWN_CATEGORY, "")
    label = name + brand + cat + " · #" + code.where(code != "", df["item"]) + price
    return label.where(name.notna(), plain)


# ---- the pipeline -------------------------------------------------------------------------------------------

def mine_rules_con(con, params: RuleParams = RuleParams(), progress: Progress = no_progress,
                   names: pd.DataFrame | None = None, *, scope: str | None = None,
                   miner: Callable[[pd.DataFrame, list[str], int, RuleParams], pd.DataFrame] | None = None
                   ) -> RulesResult:
    """Baskets -> guards -> frequent itemsets -> rules with labels (product ``names`` when the store has them),
    over a connection with an ``events`` view. The Spark engine passes ``scope``, a table of the basket-item pairs
    it counted, and ``miner``, its FP-growth: ``miner(basket codes, items, min count, params) -> itemsets``."""
    params.validate()
    t0 = time.perf_counter()
    progress(0.05, "collecting baskets")
    n_baskets = count_baskets(con, params, scope)
    if n_baskets == 0:
        raise ValueError(f"No {params.scope.replace('_', ' + ')} baskets at {params.granularity} level: "
                         "pick another scope or granularity.")
    auto = params.min_support is None
    if auto:
        progress(0.15, "choosing the support (auto)")
        load_basket_items(con, params, top=AUTO_TOP_ITEMS)
        params = replace(params, min_support=auto_support(con, n_baskets, params))
        lost = con.execute(f"""SELECT count(*) FROM item_events WHERE n >= {_min_count(params, n_baskets)}
                               AND i NOT IN (SELECT i FROM cand)""").fetchall()[0][0]
        if lost:  # an item outside the top ones can still be frequent: widen the candidates
            load_basket_items(con, params, min_events=_min_count(params, n_baskets))
    else:
        load_basket_items(con, params, min_events=_min_count(params, n_baskets))
    items, min_count, n_rows = frequent_baskets(con, n_baskets, params)
    progress(0.3, f"{len(items):,} frequent items in {n_baskets:,} baskets: checking the size")
    facts = check_guards(con, len(items), n_rows, min_count, n_baskets, params)
    progress(0.4, f"mining with {params.algorithm if miner is None else 'FP-growth on Spark'}")
    t1 = time.perf_counter()
    if miner is None:
        matrix = onehot(basket_codes(con), items["item"].tolist())
        sets, n_matrix = frequent_itemsets(matrix, min_count, params), len(matrix)
    else:
        sets, n_matrix = miner(basket_codes(con), items["item"].tolist(), min_count, params), n_rows_multi(con)
    rules = rules_from_itemsets(sets, n_matrix, items.set_index("item")["baskets"], n_baskets, params)
    mine_s = time.perf_counter() - t1
    progress(0.85, "labelling items")
    items["support"] = items["baskets"] / n_baskets
    items = item_labels(con, items, params.granularity, names)
    label = items.set_index("item")["label"]
    rules["antecedent"] = rules["antecedent_items"].map(lambda xs: " + ".join(label[x] for x in xs))
    rules["consequent"] = rules["consequent_items"].map(lambda xs: " + ".join(label[x] for x in xs))
    rules = rules.sort_values(["lift", "confidence", "antecedent", "consequent"],
                              ascending=[False, False, True, True], kind="stable").reset_index(drop=True)
    for c in ("antecedent_items", "consequent_items"):
        rules[c] = rules[c].map(list)
    facts.update(itemsets=len(sets), rules=len(rules), mine_seconds=round(mine_s, 3), auto_support=auto,
                 total_seconds=round(time.perf_counter() - t0, 3), params=asdict(params))
    progress(1.0, f"{len(rules):,} rules")
    return RulesResult(rules, items, facts)


def mine_rules(root: str | os.PathLike | None, params: RuleParams = RuleParams(),
               progress: Progress = no_progress) -> RulesResult:
    """Mine rules over the built events of ``root`` (ValueError with a suggestion when the settings explode)."""
    names = load_product_names(root) if params.granularity == "product" else None
    con = connect(root, memory_limit="4GB")
    con.execute("SET enable_progress_bar = false")  # progress goes through the callback, not stderr
    try:
        return mine_rules_con(con, params, progress, names)
    finally:
        con.close()


def category_complements_con(con, basket: str = "session", top: int = 3) -> pd.DataFrame:
    """Each category's top co-purchased categories: baskets holding both, confidence, lift (purchase baskets);
    ``con`` is a DuckDB connection or an engine (the Spark engine runs the same SQL)."""
    item, _ = _item_sql("category")
    engine = as_engine(con)
    return engine.fetch(f"""
        WITH bi AS (SELECT DISTINCT {_basket_sql(basket, engine.dialect)} AS b, {item} AS c FROM events
                    WHERE {S.EVENT_TYPE} = '{S.PURCHASE}'),
        total AS (SELECT greatest(count(DISTINCT b), 1) AS n FROM bi),
        cn AS (SELECT c, count(*) AS n FROM bi GROUP BY c),
        pairs AS (SELECT x.c AS category, y.c AS other_category, count(*) AS baskets
                  FROM bi x JOIN bi y ON x.b = y.b AND x.c <> y.c GROUP BY 1, 2),
        scored AS (SELECT category, other_category, baskets, baskets / total.n AS support,
                          baskets / a.n AS confidence, baskets * total.n / (a.n * o.n) AS lift,
                          a.n AS category_baskets
                   FROM pairs JOIN cn a ON a.c = category JOIN cn o ON o.c = other_category CROSS JOIN total),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY category
                                                ORDER BY baskets DESC, lift DESC, other_category) AS rank
                   FROM scored)
        SELECT category, other_category, rank::INTEGER AS rank, baskets::BIGINT AS baskets,
               category_baskets::BIGINT AS category_baskets, support::DOUBLE AS support,
               confidence::DOUBLE AS confidence, lift::DOUBLE AS lift
        FROM ranked WHERE rank <= {int(top)} ORDER BY category_baskets DESC, category, rank""")


def complements_matrix(cc: pd.DataFrame, value: str = "lift", top: int = 15) -> pd.DataFrame:
    """Category x complement matrix of ``value`` for the ``top`` categories with the most purchase baskets."""
    cats = cc.drop_duplicates("category").nlargest(top, "category_baskets")["category"]
    sub = cc[cc["category"].isin(cats)]
    return sub.pivot_table(index="category", columns="other_category", values=value, aggfunc="first")


def item_rules(rules: pd.DataFrame, item: str) -> pd.DataFrame:
    """Rules that mention ``item`` on either side, best lift first."""
    hit = rules["antecedent_items"].map(lambda xs: item in xs) | rules["consequent_items"].map(lambda xs: item in xs)
    return rules[hit].reset_index(drop=True)


def items_with_rules(res: RulesResult) -> pd.DataFrame:
    """The items that appear in at least one rule, most supported first (the page's item picker)."""
    used = set(itertools.chain.from_iterable(res.rules["antecedent_items"])) | \
        set(itertools.chain.from_iterable(res.rules["consequent_items"]))
    return res.items[res.items["item"].isin(used)].sort_values("support", ascending=False, kind="stable")


def neighbours(rules: pd.DataFrame, items: pd.DataFrame, item: str) -> pd.DataFrame:
    """Items that share a rule with ``item``: number of rules, best lift and confidence."""
    hit = item_rules(rules, item)
    rows = [(other, r.lift, r.confidence, r.baskets) for r in hit.itertuples()
            for other in list(r.antecedent_items) + list(r.consequent_items) if other != item]
    df = pd.DataFrame(rows, columns=["item", "lift", "confidence", "baskets"])
    if df.empty:
        return df.assign(label=pd.Series(dtype=object), rules=pd.Series(dtype="int64"))
    out = df.groupby("item").agg(rules=("lift", "size"), best_lift=("lift", "max"),
                                 best_confidence=("confidence", "max"), baskets=("baskets", "max")).reset_index()
    out = out.merge(items[["item", "label", "support"]], on="item", how="left")
    return out.sort_values(["best_lift", "rules"], ascending=False)[
        ["label", "item", "rules", "best_lift", "best_confidence", "baskets", "support"]].reset_index(drop=True)


# ---- the build stage ----------------------------------------------------------------------------------------

def build_rules(root: str | os.PathLike | None, out, params: RuleParams = RuleParams(),
                progress: Progress = no_progress, spark: Any = None) -> StageResult:
    """Write the default rules, their items and the category complements into ``out``; with ``spark`` (a
    SparkSpec) the scans of the events and the frequent itemsets (FP-growth) run on Spark."""
    con = connect(root, memory_limit="4GB")
    con.execute("SET enable_progress_bar = false")
    note = None
    if params.scope == "views" and not con.execute(
            f"SELECT 1 FROM events WHERE {S.EVENT_TYPE} = '{S.VIEW}' LIMIT 1").fetchall():
        # a purchase log (UCI Online Retail, a till export) has no views: its baskets are its orders
        params = replace(params, scope="purchases_carts")
        note = "The store has no views: the default rules are mined from carts and purchases."
    engine, extra, scratch = as_engine(con), {}, out / ".spark"
    mine: dict[str, Any] = {}
    try:
        try:
            if spark is not None:
                from recsys.rules.spark import on_spark
                engine, mine = on_spark(root, con, params, spark, scratch)
                extra = {"engine": "spark", "spark_master": spark.label}
            names = load_product_names(root) if params.granularity == "product" else None
            res = mine_rules_con(con, params, lambda f, m: progress(0.8 * f, m), names, **mine)
        except ValueError as exc:  # data that explodes at the defaults must not break the whole build
            note = f"{note} {exc}" if note else str(exc)
            log.warning("rules: %s", note)
            res = RulesResult(pd.DataFrame({c: pd.Series(dtype=object) for c in RULE_COLUMNS}),
                              pd.DataFrame({c: pd.Series(dtype=t) for c, t in ITEM_COLUMNS.items()}), {})
        progress(0.85, "category complements")
        cc = category_complements_con(engine, params.basket)
    finally:  # whatever failed: the connection closed, the engine's cached tables and Spark's part files gone
        con.close()
        engine.close()
        shutil.rmtree(scratch, ignore_errors=True)
    res.rules.to_parquet(out / RULES_FILE, index=False)
    res.items.to_parquet(out / ITEMS_FILE, index=False)
    cc.to_parquet(out / COMPLEMENTS_FILE, index=False)
    stats = {k: v for k, v in res.stats.items() if k != "params"}
    resolved = res.stats.get("params", asdict(params))  # the auto support as the number it became
    return StageResult(rows={"rules": len(res.rules), "items": len(res.items), "category_complements": len(cc)},
                       params=resolved, extra={"mining": stats, "note": note, "requested_params": asdict(params),
                                               **extra})


def build_rules_stage(root: str | os.PathLike | None, *, force: bool = False, progress: Progress = no_progress,
                      params: RuleParams = RuleParams(), engine: Any = None) -> tuple[dict, bool]:
    """The ``rules`` build stage (skipped when events and parameters are unchanged); ``engine`` a SparkSpec runs
    it on Spark (the same artifacts, so the engine is not part of the fingerprint)."""
    fp = upstream_fingerprint(root, ["events"], asdict(params))
    return run_stage(root, STAGE, lambda out, prog: build_rules(root, out, params, prog, engine),
                     input_fingerprint=fp, force=force, progress=progress)


def load_rules(root: str | os.PathLike | None) -> RulesResult:
    """The stage's default rules, items and category complements (in ``stats['complements']``)."""
    d = require_stage(root, STAGE)
    m = read_manifest(root, STAGE) or {}
    stats = {**m.get("mining", {}), "note": m.get("note"), "params": m.get("params", {}),
             "complements": load_category_complements(root)}
    return RulesResult(pd.read_parquet(d / RULES_FILE), pd.read_parquet(d / ITEMS_FILE), stats)


def load_category_complements(root: str | os.PathLike | None) -> pd.DataFrame:
    """The stage's category complements, as ``category_complements_con`` returns them (category, other_category,
    rank, baskets, category_baskets, support, confidence, lift)."""
    return pd.read_parquet(require_stage(root, STAGE) / COMPLEMENTS_FILE)


def requested_params(root: str | os.PathLike | None) -> RuleParams:
    """The parameters the built stage was asked for (min_support None = auto), RuleParams() when absent."""
    known = set(asdict(RuleParams()))
    m = read_manifest(root, STAGE) or {}
    asked = m.get("requested_params") or m.get("params") or {}
    return replace(RuleParams(), **{k: v for k, v in asked.items() if k in known})


def default_params(root: str | os.PathLike | None) -> RuleParams:
    """The parameters the built stage used, the auto support resolved (RuleParams() when absent)."""
    known = set(asdict(RuleParams()))
    m = read_manifest(root, STAGE) or {}
    return replace(RuleParams(), **{k: v for k, v in m.get("params", {}).items() if k in known})
