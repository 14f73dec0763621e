"""Product affinity: baskets -> frequent itemsets (mlxtend Apriori or FP-growth) -> association rules.

Support is always relative to **all** baskets of the scope (those with at least one item at the granularity),
although only baskets holding two or more frequent items are one-hot encoded: an itemset of two or more items can
only occur in those, and single-item supports are counted exactly in DuckDB. So ``support(X) = baskets containing
X / all baskets``, as in the textbook, while the boolean matrix stays small.

:func:`mine_rules_con` is the pipeline: the basket steps of ``baskets``, the guards (estimates that refuse
settings which would explode), the miner, rule metrics and readable item labels; :func:`mine_rules` mines other
thresholds on demand; ``stage`` stores the default rules; ``spark`` swaps in FP-growth on Spark as the miner.
"""
from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import Progress, connect, no_progress
from recsys.ingest.adapters import load_product_names
from recsys.rules.baskets import (AUTO_TOP_ITEMS, auto_support, basket_codes, count_baskets, frequent_baskets,
                                  load_basket_items, min_basket_count, n_rows_multi)
from recsys.rules.params import RuleParams

RULE_COLUMNS = ["antecedent", "consequent", "antecedent_items", "consequent_items", "antecedent_len",
                "consequent_len", "baskets", "support", "antecedent_support", "consequent_support", "confidence",
                "lift", "leverage", "conviction"]
ITEM_COLUMNS = {"item": str, "baskets": "int64", "support": float, "label": str, "top_category": str}
BOOL_OPS_PER_S = 3e8  # low-memory apriori's numpy throughput on this machine kind, kept conservative
DENSE_LIMIT_MB = 768  # a larger one-hot is built sparse


@dataclass
class RulesResult:
    """Mined rules, their items (labels, support, colour group) and the facts of the run."""
    rules: pd.DataFrame
    items: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


# ---- guards -------------------------------------------------------------------------------------------------

PAIR_WORK_LIMIT = 50e6   # guard: pair occurrences DuckDB may count before mining (seconds, not minutes)


AUTO_RAISES = 6  # auto support: times it may be raised to the guards' suggestion before mining is refused


class GuardError(ValueError):
    """Mining at these settings would exceed a guard; ``support`` is the lowest min support suggested instead."""

    def __init__(self, message: str, support: float):
        super().__init__(message)
        self.support = support


def _better(params: RuleParams, factor: float) -> float:
    return min(1.0, params.min_support * max(2.0, factor))


def _suggest(params: RuleParams, factor: float) -> str:
    return f"raise min support to at least {_better(params, factor):.2g} (now {params.min_support:.2g}) or pick auto"


def check_guards(con, n_items: int, n_rows: int, min_count: int, n_baskets: int, params: RuleParams) -> dict:
    """Estimate itemsets, memory and time before mining; raise ValueError (suggesting a higher support) if too big."""
    per = con.execute("SELECT k, count(*) / k AS baskets FROM multi GROUP BY k").df()
    ks, nb = per["k"].to_numpy(float), per["baskets"].to_numpy(float)
    pair_work = float((nb * ks * (ks - 1) / 2).sum())
    if pair_work > PAIR_WORK_LIMIT:
        f = math.sqrt(pair_work / PAIR_WORK_LIMIT)
        raise GuardError(f"These settings would count {pair_work:,.0f} item pairs in baskets (limit "
                         f"{PAIR_WORK_LIMIT:,.0f}): {_suggest(params, f)}, or use a coarser granularity.",
                         _better(params, f))
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
        raise GuardError(f"These settings would give about {est_itemsets:,.0f} frequent itemsets "
                         f"(limit {params.max_itemsets:,}): raise min support to at least {target:.2g} "
                         f"(now {params.min_support:.2g}), pick auto, or lower the max itemset length.",
                         min(1.0, float(target)))
    if onehot_mb > params.max_memory_mb:
        f = onehot_mb / max(params.max_memory_mb, 1)
        raise GuardError(f"The basket matrix would need about {onehot_mb:,.0f} MB (limit {params.max_memory_mb:,}): "
                         f"{_suggest(params, f)}.", _better(params, f))
    if seconds > params.max_seconds:
        f = math.sqrt(seconds / params.max_seconds)
        raise GuardError(f"Mining would take about {seconds:,.0f} s (limit {params.max_seconds:.0f} s): "
                         f"{_suggest(params, f)}, or use FP-growth.", _better(params, f))
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
        wanted = f"(SELECT * FROM events WHERE {S.PRODUCT_ID} IN (SELECT item::BIGINT FROM want))"
        df = con.execute(f"""WITH cat AS ({S.catalog_sql(wanted)})
            SELECT w.item, c.{S.BRAND} AS brand, c.{S.CATEGORY_CODE} AS category_code, c.{S.PRICE} AS price
            FROM want w JOIN cat c ON c.{S.PRODUCT_ID} = w.item::BIGINT""").df()
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

def _within_guards(con, n_baskets: int, params: RuleParams, auto: bool, progress: Progress):
    """Frequent items and ``check_guards``' facts; with auto support, a support the guards refuse (the k-th pair
    is too rare) is raised to their suggestion, each step recorded as ``auto_support_raised``."""
    raised = []
    while True:
        items, min_count, n_rows = frequent_baskets(con, n_baskets, params)
        progress(0.3, f"{len(items):,} frequent items in {n_baskets:,} baskets: checking the size")
        try:
            facts = check_guards(con, len(items), n_rows, min_count, n_baskets, params)
            break
        except GuardError as exc:
            if not auto or len(raised) >= AUTO_RAISES or exc.support <= params.min_support:
                raise
            raised.append({"support": params.min_support, "why": str(exc).split(":")[0]})
            params = replace(params, min_support=exc.support)
    if raised:
        facts["auto_support_raised"] = raised
    return items, min_count, n_rows, facts, params


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
        lost = con.execute(f"""SELECT count(*) FROM item_events WHERE n >= {min_basket_count(params, n_baskets)}
                               AND i NOT IN (SELECT i FROM cand)""").fetchall()[0][0]
        if lost:  # an item outside the top ones can still be frequent: widen the candidates
            load_basket_items(con, params, min_events=min_basket_count(params, n_baskets))
    else:
        load_basket_items(con, params, min_events=min_basket_count(params, n_baskets))
    items, min_count, n_rows, facts, params = _within_guards(con, n_baskets, params, auto, progress)
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
    with connect(root, memory_limit="4GB") as con:  # closed on errors too
        con.execute("SET enable_progress_bar = false")  # progress goes through the callback, not stderr
        return mine_rules_con(con, params, progress, names)


# ---- reading rules ------------------------------------------------------------------------------------------

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
