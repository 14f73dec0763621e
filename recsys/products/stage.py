"""Product facts, co-view substitutes and co-purchase complements, precomputed once as the "products" stage.

- **card**: name and stock code (stores whose files have them, e.g. UCI Online Retail; empty otherwise), brand,
  category, price, price band within its category, funnel counts and rates;
- **substitutes**: items co-viewed in sessions where at most one of the pair was bought, ranked by cosine of
  co-view sessions (``n_ab / sqrt(n_a * n_b)``), with a minimum number of shared sessions;
- **complements**: items bought by the same user in the same session or within ``copurchase_days``, ranked by
  lift (users buying both x all buyers / (buyers of a x buyers of b)) with a minimum number of such users;
- **category complements**: each category's top co-purchased categories (the rules stage's table when it exists,
  else the same definition computed here) with the best product of each, so a product without direct
  co-purchases still gets complements;
- **feature neighbours**: same category, same brand and a close price, for cold-start products.

Lookups (:class:`ProductService`) are slices of arrays sorted by product id: microseconds at October scale.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.ingest.adapters import load_product_names
from recsys.rules.stage import load_category_complements
from recsys.artifacts import (ArtifactError, Progress, StageResult, connect, no_progress, read_manifest,
                              require_stage, run_stage, sql_literal, upstream_fingerprint)

log = logging.getLogger(__name__)

STAGE = "products"
CARDS, SUBSTITUTES, COMPLEMENTS, CAT_COMPLEMENTS = ("products.parquet", "substitutes.parquet",
                                                   "complements.parquet", "category_complements.parquet")
OPTIONAL_UPSTREAM = ("rules", "model")
# what model_item_embeddings may read from the model stage
MODEL_FILES = ("item_embeddings.npy", "item_ids.npy", "product_ids.npy", "items.parquet", "item_ids.parquet",
               "catalog.parquet")
PRICE_BANDS = ("budget", "mid-range", "premium")


@dataclass(frozen=True)
class ProductParams:
    """Knobs of the products stage."""
    max_session_items: int = 30     # sessions viewing more distinct items are skipped for co-views (browsing bots)
    min_coview_sessions: int = 2    # a substitute must share at least this many sessions
    min_copurchase_users: int = 2   # a complement must be bought together by at least this many users
    copurchase_days: float = 3.0    # same user, purchases at most this far apart, count as bought together
    top_k: int = 20                 # neighbours kept per product
    top_categories: int = 3         # complementary categories kept per category
    memory_limit: str = "6GB"       # DuckDB spills to disk past it
    seed: int = 7                   # seeds the search query tower


class ProductNotFound(KeyError):
    """The product id is not in the store's catalog."""


def product_cards(con) -> pd.DataFrame:
    """One row per product: its most frequent (category, brand), median positive price (the lower median, from
    per-price counts so memory stays bounded at October scale), price band within its category, funnel counts,
    buyers, revenue and conversion rates."""
    df = con.execute(f"""
        WITH combo AS (SELECT product_id, category_id, category_code, brand, count(*) AS n
                       FROM events GROUP BY ALL),
        feat AS (SELECT product_id, {', '.join(f"first({c} ORDER BY n DESC, category_id, category_code, brand) AS {c}"
                                               for c in ('category_id', 'category_code', 'brand'))}
                 FROM combo GROUP BY product_id),  -- one (category, brand) combination; ties: the lowest
        pp AS (SELECT product_id, price, count(*) AS n FROM events WHERE price > 0 GROUP BY 1, 2),
        cum AS (SELECT product_id, price, n, sum(n) OVER (PARTITION BY product_id ORDER BY price
                                                          ROWS UNBOUNDED PRECEDING) AS c,
                       sum(n) OVER (PARTITION BY product_id) AS t FROM pp),
        med AS (SELECT product_id, min(price) FILTER (WHERE c >= t / 2.0) AS price FROM cum GROUP BY 1),
        funnel AS (
            SELECT product_id,
                   count(*) FILTER (WHERE event_type = '{S.VIEW}') AS views,
                   count(*) FILTER (WHERE event_type = '{S.CART}') AS carts,
                   count(*) FILTER (WHERE event_type = '{S.PURCHASE}') AS purchases,
                   count(DISTINCT user_id) FILTER (WHERE event_type = '{S.PURCHASE}') AS buyers,
                   {S.money_sum_sql('price', f"event_type = '{S.PURCHASE}'")} AS revenue
            FROM events GROUP BY product_id)
        SELECT feat.*, coalesce(med.price, 0.0) AS price, funnel.* EXCLUDE (product_id),
               {S.category_key_sql()} AS category_key
        FROM feat JOIN funnel USING (product_id) LEFT JOIN med USING (product_id) ORDER BY product_id
    """).df()
    df["cart_rate"] = (df["carts"] / df["views"].where(df["views"] > 0)).fillna(0.0)
    df["purchase_rate"] = (df["purchases"] / df["views"].where(df["views"] > 0)).fillna(0.0)
    df["price_band"] = price_bands(df)
    return df


def with_names(cards: pd.DataFrame, names: pd.DataFrame | None) -> pd.DataFrame:
    """The cards with ``name`` and ``stock_code`` after ``product_id`` (empty strings for products without)."""
    out = cards.drop(columns=[c for c in ("name", "stock_code") if c in cards])
    got = None if names is None else names.drop_duplicates("product_id").set_index("product_id")
    for i, col in enumerate(("name", "stock_code"), start=1):
        values = [""] * len(out) if got is None else out["product_id"].map(got[col]).astype(object).fillna("")
        out.insert(i, col, np.asarray(values, dtype=object))
    return out


def price_bands(df: pd.DataFrame) -> pd.Series:
    """budget / mid-range / premium by the price's percentile rank within its category (terciles)."""
    pct = df["price"].where(df["price"] > 0).groupby(df["category_key"]).rank(pct=True, method="average")
    band = np.select([pct <= 1 / 3, pct <= 2 / 3, pct > 2 / 3], PRICE_BANDS, default="unpriced")
    return pd.Series(band, index=df.index, dtype="object")


def coview_substitutes(con, p: ProductParams) -> pd.DataFrame:
    """Top-k co-viewed items per product, over sessions where at most one item of the pair was bought."""
    return con.execute(f"""
        WITH sv AS (
            SELECT hash(user_session) AS s, product_id AS p, bool_or(event_type = '{S.PURCHASE}') AS bought
            FROM events GROUP BY 1, 2 HAVING bool_or(event_type = '{S.VIEW}')),
        ok AS (SELECT s FROM sv GROUP BY s HAVING count(*) BETWEEN 2 AND {int(p.max_session_items)}),
        v AS (SELECT sv.* FROM sv JOIN ok USING (s)),
        n AS (SELECT p, count(*) AS n FROM v GROUP BY p),
        pairs AS (
            SELECT a.p AS a, b.p AS b, count(*) AS co_sessions
            FROM v a JOIN v b ON a.s = b.s AND a.p <> b.p AND NOT (a.bought AND b.bought)
            GROUP BY 1, 2 HAVING count(*) >= {int(p.min_coview_sessions)}),
        scored AS (
            SELECT a AS product_id, b AS other_id, co_sessions,
                   co_sessions / sqrt(na.n * nb.n) AS score
            FROM pairs JOIN n na ON na.p = a JOIN n nb ON nb.p = b),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY score DESC, co_sessions DESC,
                                         other_id) AS rank FROM scored)
        SELECT product_id, other_id, rank::INTEGER AS rank, co_sessions::BIGINT AS co_sessions,
               score::DOUBLE AS score
        FROM ranked WHERE rank <= {int(p.top_k)} ORDER BY product_id, rank
    """).df()


def _purchases_sql(p: ProductParams) -> str:
    """Purchase events as (user, session, product, category key, time), the basket unit for co-purchases."""
    return f"""
        pur AS (SELECT user_id AS u, hash(user_session) AS s, product_id AS p, min({S.category_key_sql()}) AS c,
                       min(epoch(event_time)) AS t
                FROM events WHERE event_type = '{S.PURCHASE}' GROUP BY 1, 2, 3),
        together AS (
            SELECT a.u, a.p AS a, b.p AS b, a.c AS ca, b.c AS cb
            FROM pur a JOIN pur b ON a.u = b.u AND a.p <> b.p
             AND (a.s = b.s OR abs(a.t - b.t) <= {float(p.copurchase_days) * 86400.0})),
        total AS (SELECT greatest(count(DISTINCT u), 1) AS n FROM pur)"""


def copurchase_complements(con, p: ProductParams) -> pd.DataFrame:
    """Top-k complements per product: co-purchased by >= min users, ranked by lift then co-buyers."""
    return con.execute(f"""
        WITH {_purchases_sql(p)},
        buyers AS (SELECT p, count(DISTINCT u) AS n FROM pur GROUP BY p),
        pairs AS (SELECT a, b, count(DISTINCT u) AS n FROM together GROUP BY 1, 2
                  HAVING count(DISTINCT u) >= {int(p.min_copurchase_users)}),
        scored AS (
            SELECT a AS product_id, b AS other_id, pairs.n AS co_buyers, pairs.n / total.n AS support,
                   pairs.n / ba.n AS confidence, pairs.n * total.n / (ba.n * bb.n) AS lift
            FROM pairs JOIN buyers ba ON ba.p = a JOIN buyers bb ON bb.p = b CROSS JOIN total),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY lift DESC, co_buyers DESC,
                                                other_id) AS rank FROM scored)
        SELECT product_id, other_id, rank::INTEGER AS rank, co_buyers::BIGINT AS co_buyers,
               support::DOUBLE AS support, confidence::DOUBLE AS confidence, lift::DOUBLE AS lift
        FROM ranked WHERE rank <= {int(p.top_k)} ORDER BY product_id, rank
    """).df()


def category_complements(con, p: ProductParams) -> pd.DataFrame:
    """Each category's top co-purchased categories (by co-buyers, then lift), with counts and lift.

    A category is the category_code, or ``id:<category_id>`` for products without a code (a third of real rows).
    """
    return con.execute(f"""
        WITH {_purchases_sql(p)},
        cb AS (SELECT c, count(DISTINCT u) AS n FROM pur GROUP BY c),
        pairs AS (SELECT ca, cb AS cb_, count(DISTINCT u) AS n FROM together WHERE ca <> cb GROUP BY 1, 2
                  HAVING count(DISTINCT u) >= {int(p.min_copurchase_users)}),
        scored AS (SELECT ca AS category, cb_ AS other_category, pairs.n AS co_purchases,
                          pairs.n * total.n / (x.n * y.n) AS lift
                   FROM pairs JOIN cb x ON x.c = ca JOIN cb y ON y.c = cb_ CROSS JOIN total),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY category ORDER BY co_purchases DESC, lift DESC,
                                                other_category) AS rank FROM scored)
        SELECT category, other_category, rank::INTEGER AS rank, co_purchases::BIGINT AS co_purchases,
               lift::DOUBLE AS lift
        FROM ranked WHERE rank <= {int(p.top_categories)} ORDER BY category, rank
    """).df()


def rules_category_complements(root: str | os.PathLike | None, top: int) -> pd.DataFrame | None:
    """The rules stage's category complements as (category, other_category, rank, co_purchases, lift); None when
    the rules stage is not built."""
    if read_manifest(root, "rules") is None:
        return None
    df = load_category_complements(root).rename(columns={"baskets": "co_purchases"})
    out = df.sort_values(["category", "co_purchases", "lift"], ascending=[True, False, False])
    out["rank"] = out.groupby("category").cumcount() + 1
    out = out[out["rank"] <= top]
    return out[["category", "other_category", "rank", "co_purchases", "lift"]].astype(
        {"rank": "int32", "co_purchases": "int64", "lift": "float64"}).reset_index(drop=True)


def best_category_products(con, pairs: pd.DataFrame, p: ProductParams) -> pd.DataFrame:
    """For each (category, other_category): the product of the other category most co-bought with the category."""
    if pairs.empty:
        return pairs.assign(best_product_id=pd.Series(dtype="int64"), best_co_buyers=pd.Series(dtype="int64"))
    con.register("cat_pairs", pairs[["category", "other_category"]])
    best = con.execute(f"""
        WITH {_purchases_sql(p)},
        pc AS (SELECT ca AS category, cb AS other_category, b AS product_id, count(DISTINCT u) AS n
               FROM together JOIN cat_pairs ON category = ca AND other_category = cb GROUP BY 1, 2, 3),
        pop AS (SELECT p, count(*) AS n FROM pur GROUP BY p)
        SELECT category, other_category,
               first(product_id ORDER BY pc.n DESC, pop.n DESC, product_id) AS best_product_id,  -- ties: lower id
               max(pc.n) AS best_co_buyers
        FROM pc JOIN pop ON pop.p = pc.product_id GROUP BY 1, 2
    """).df()
    con.unregister("cat_pairs")
    return pairs.merge(best, on=["category", "other_category"], how="left")


def build_products(root: str | os.PathLike | None, out: Path, params: ProductParams = ProductParams(),
                   progress: Progress = no_progress) -> StageResult:
    """Compute every product table (and the search index) into ``out``."""
    con = connect(root, memory_limit=params.memory_limit)
    con.execute("SET preserve_insertion_order = false")
    spill = out / ".spill"  # DuckDB would otherwise spill into ./.tmp of the working directory
    con.execute(f"SET temp_directory = {sql_literal(spill)}")
    progress(0.05, "product cards")
    cards = with_names(product_cards(con), load_product_names(root))
    cards.to_parquet(out / CARDS, index=False)
    progress(0.2, "co-view substitutes")
    subs = coview_substitutes(con, params)
    subs.to_parquet(out / SUBSTITUTES, index=False)
    progress(0.4, "co-purchase complements")
    comps = copurchase_complements(con, params)
    comps.to_parquet(out / COMPLEMENTS, index=False)
    progress(0.5, "category complements")
    cats = rules_category_complements(root, params.top_categories)
    source = "rules stage" if cats is not None else "products stage"
    if cats is None:
        cats = category_complements(con, params)
    cats = best_category_products(con, cats, params)
    cats.to_parquet(out / CAT_COMPLEMENTS, index=False)
    con.close()
    shutil.rmtree(spill, ignore_errors=True)
    progress(0.6, "search index")
    from recsys.products.search import build_search
    emb = model_item_embeddings(root, cards["product_id"].to_numpy(np.int64))
    search_report = build_search(cards, out / "search", item_embeddings=emb, seed=params.seed,
                                 progress=lambda f, m: progress(0.6 + 0.4 * f, m))
    return StageResult(rows={"products": len(cards), "substitutes": len(subs), "complements": len(comps),
                             "category_complements": len(cats)},
                       params=asdict(params),
                       extra={"category_complements_source": source, "search": search_report})


def model_item_embeddings(root: str | os.PathLike | None, product_ids: np.ndarray) -> np.ndarray | None:
    """The two-tower's item embeddings aligned to ``product_ids`` (None when the model stage is absent)."""
    if read_manifest(root, "model") is None:
        return None
    d = require_stage(root, "model", files=MODEL_FILES)  # a damaged checkpoint does not spoil the embeddings
    path = d / "item_embeddings.npy"
    if not path.exists():
        return None
    emb = np.load(path)
    ids = _model_item_ids(d)
    if ids is None:
        if len(emb) != len(product_ids):
            log.warning("model item embeddings (%d) do not match the catalog (%d)", len(emb), len(product_ids))
            return None
        return emb.astype(np.float32)
    pos = np.searchsorted(ids, product_ids) if np.all(ids[:-1] <= ids[1:]) else None
    if pos is None:
        order = np.argsort(ids)
        ids, emb = ids[order], emb[order]
        pos = np.searchsorted(ids, product_ids)
    pos = np.clip(pos, 0, len(ids) - 1)
    found = ids[pos] == product_ids
    out = np.zeros((len(product_ids), emb.shape[1]), dtype=np.float32)
    out[found] = emb[pos[found]]
    return out


def _model_item_ids(d: Path) -> np.ndarray | None:
    """The model stage's product id per embedding row, when it stores one."""
    for name in ("item_ids.npy", "product_ids.npy"):
        if (d / name).exists():
            return np.load(d / name).astype(np.int64)
    for name in ("items.parquet", "item_ids.parquet", "catalog.parquet"):
        if (d / name).exists():
            df = pd.read_parquet(d / name)
            if S.PRODUCT_ID in df.columns:
                return df[S.PRODUCT_ID].to_numpy(np.int64)
    return None


def build_products_stage(root: str | os.PathLike | None = None, *, force: bool = False,
                         progress: Progress = no_progress,
                         params: ProductParams = ProductParams()) -> tuple[dict, bool]:
    """The products stage: skipped when the events (and the rules/model stages, if built) are unchanged."""
    ups = ["events"] + [s for s in OPTIONAL_UPSTREAM if read_manifest(root, s) is not None]
    fp = upstream_fingerprint(root, ups, [asdict(params), ups])
    return run_stage(root, STAGE, lambda tmp, prog: build_products(root, tmp, params, prog),
                     input_fingerprint=fp, seed=params.seed, force=force, progress=progress)


# ---- lookups ----------------------------------------------------------------------------------------------

class ProductService:
    """The products stage loaded once: cards, substitutes, complements, feature and embedding neighbours, search."""

    def __init__(self, root: str | os.PathLike | None = None):
        d = require_stage(root, STAGE)
        self.root, self.manifest = root, read_manifest(root, STAGE)
        try:
            self.cards = pd.read_parquet(d / CARDS)
            if "name" not in self.cards:  # a stage built before cards had names
                self.cards = with_names(self.cards, None)
            self.subs = pd.read_parquet(d / SUBSTITUTES)
            self.comps = pd.read_parquet(d / COMPLEMENTS)
            self.cats = pd.read_parquet(d / CAT_COMPLEMENTS)
            from recsys.products.search import SearchIndex
            self.search_index = SearchIndex.load(d / "search", self.cards)
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"the {STAGE} stage is unreadable ({type(exc).__name__} while reading a file under "
                                f"{STAGE}/); rebuild with `python -m recsys build --force`") from exc
        self.ids = self.cards["product_id"].to_numpy(np.int64)
        self._subs_ids = self.subs["product_id"].to_numpy(np.int64)
        self._groups = {k: np.asarray(v, np.int64) for k, v in self.cards.groupby("category_key").indices.items()}
        self._log_price = np.log1p(self.cards["price"].to_numpy(float))
        self._brand = self.cards["brand"].to_numpy(object)
        self._name = self.cards["name"].to_numpy(object)
        self._pop = np.log1p(self.cards["views"].to_numpy(float) + 5 * self.cards["purchases"].to_numpy(float))
        self._code = self.cards["category_code"].to_numpy(object)
        self._key = self.cards["category_key"].to_numpy(object)
        self._price = self.cards["price"].to_numpy(np.float64)
        self._band = self.cards["price_band"].to_numpy(object)
        self._subs = {c: self.subs[c].to_numpy() for c in self.subs.columns}
        self._comps = {c: self.comps[c].to_numpy() for c in self.comps.columns}
        self._cat_rows = {k: list(g.itertuples()) for k, g in self.cats.groupby("category", sort=False)}
        try:
            self.embeddings = model_item_embeddings(root, self.ids)
        except (ArtifactError, OSError, ValueError) as exc:  # the products still serve, with feature neighbours
            log.warning("model item embeddings unavailable, similar products fall back to features: %s", exc)
            self.embeddings = None
        if self.embeddings is not None:
            norms = np.linalg.norm(self.embeddings, axis=1, keepdims=True)
            self.embeddings = self.embeddings / np.maximum(norms, 1e-9)

    def position(self, product_id: int) -> int:
        """Row of a product id in the cards; ProductNotFound when the store has no such product."""
        i = int(np.searchsorted(self.ids, product_id))
        if i >= len(self.ids) or self.ids[i] != product_id:
            raise ProductNotFound(f"unknown product_id {product_id}: no such product in this store")
        return i

    def example_products(self) -> dict[str, int]:
        """A few telling products: best seller, most viewed, one with bought-together items, a cold-start one."""
        c, out = self.cards, {}
        def add(what: str, pos: int) -> None:
            r = c.iloc[pos]
            shown = (f"{r['name']} #{r['stock_code'] or r['product_id']}" if r["name"] else
                     f"{r['brand']} {str(r['category_code']).split('.')[-1]} #{r['product_id']}")
            out[f"{what}: {shown}"] = int(r["product_id"])
        if len(c):
            add("best seller", int(c["purchases"].to_numpy().argmax()))
            add("most viewed", int(c["views"].to_numpy().argmax()))
        if len(self.comps):
            add("bought with others", self.position(int(self.comps["product_id"].value_counts().index[0])))
        cold = np.flatnonzero(~np.isin(self.ids, self._subs_ids) & (c["category_code"].to_numpy() != S.UNKNOWN_CATEGORY))
        if len(cold):
            add("cold start (no co-views)", int(cold[np.argmin(c["views"].to_numpy()[cold])]))
        return out

    def card(self, product_id: int) -> dict:
        """Name (empty when the store has none), brand, category, price, price band and funnel figures."""
        row = self.cards.iloc[self.position(product_id)]
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}

    def _frame(self, positions, **extra) -> pd.DataFrame:
        """Labelled products at cards positions (product_id, name, brand, category, price) plus extra columns."""
        pos = np.asarray(positions, np.int64)
        data = {"product_id": self.ids[pos], "name": self._name[pos], "brand": self._brand[pos],
                "category": self._code[pos], "price": self._price[pos]}
        data.update({k: (v if np.ndim(v) else np.full(len(pos), v, dtype=object)) for k, v in extra.items()})
        return pd.DataFrame(data)

    def _slice(self, cols: dict[str, np.ndarray], product_id: int, k: int) -> dict[str, np.ndarray]:
        ids = cols["product_id"]
        lo, hi = np.searchsorted(ids, product_id, "left"), np.searchsorted(ids, product_id, "right")
        return {c: v[lo:min(hi, lo + k)] for c, v in cols.items()}

    def substitutes(self, product_id: int, k: int = 10) -> pd.DataFrame:
        """Co-view substitutes (sessions where at most one of the two was bought), best first."""
        self.position(product_id)
        s = self._slice(self._subs, product_id, k)
        return self._frame(np.searchsorted(self.ids, s["other_id"]), score=s["score"], co_sessions=s["co_sessions"],
                           reason=[f"co-viewed in {n} sessions" for n in s["co_sessions"]], source="co-view")

    def feature_similar(self, product_id: int, k: int = 10) -> pd.DataFrame:
        """Same-category products ranked by brand match, price closeness and popularity (works for cold start)."""
        i = self.position(product_id)
        cand, scope = self._groups[self._key[i]], "same category"
        if len(cand) < 2:  # a category of its own: fall back to the brand, then to the whole catalog
            known = self._brand[i] != S.UNKNOWN_BRAND
            cand = np.flatnonzero(self._brand == self._brand[i]) if known else np.arange(len(self.ids))
            scope = "same brand" if known else "any category"
            if len(cand) < 2:
                cand, scope = np.arange(len(self.ids)), "any category"
        cand = cand[cand != i]
        same_brand = (self._brand[cand] == self._brand[i]) & (self._brand[i] != S.UNKNOWN_BRAND)
        score = (0.5 * same_brand + 0.4 * np.exp(-np.abs(self._log_price[cand]
                 - self._log_price[i])) + 0.1 * self._pop[cand] / max(self._pop.max(), 1e-9))
        order = np.argsort(-score, kind="stable")[:k]
        top = cand[order]
        same = same_brand[order]
        reason = [f"{scope}, same brand, similar price" if b and scope != "same brand" else f"{scope}, similar price"
                  for b in same]
        return self._frame(top, score=score[order], reason=reason, source="features")

    def embedding_similar(self, product_id: int, k: int = 10) -> pd.DataFrame | None:
        """Nearest products in the two-tower item-embedding space (None when the model stage is not built)."""
        i = self.position(product_id)
        if self.embeddings is None or not self.embeddings[i].any():
            return None
        s = np.einsum("ij,j->i", self.embeddings, self.embeddings[i])  # one query: no BLAS thread pool
        s[i] = -np.inf
        from recsys.products.search import top_k
        top = top_k(s, k)
        return self._frame(top, score=s[top], reason="close in the two-tower item space", source="embedding")

    def similar(self, product_id: int, k: int = 10) -> dict[str, pd.DataFrame]:
        """Both similar lists: embedding (or feature, for no model) neighbours and co-view substitutes."""
        emb = self.embedding_similar(product_id, k)
        return {"neighbours": emb if emb is not None else self.feature_similar(product_id, k),
                "co_view": self.substitutes(product_id, k)}

    def complements(self, product_id: int, k: int = 10) -> pd.DataFrame:
        """Items bought together (by lift, min support), then the best item of each complementary category."""
        i = self.position(product_id)
        c = self._slice(self._comps, product_id, k)
        pos = np.searchsorted(self.ids, c["other_id"])
        direct_keys, listed = set(self._key[pos]), set(c["other_id"].tolist())
        picks = []
        for r in self._cat_rows.get(self._key[i], []):  # the best item of each top category, unless covered
            pid = r.best_product_id
            if r.other_category in direct_keys or pd.isna(pid) or int(pid) == product_id or int(pid) in listed:
                continue
            picks.append(r)
        cat_pos = np.searchsorted(self.ids, np.array([int(r.best_product_id) for r in picks], np.int64))
        return self._frame(
            np.concatenate([pos, cat_pos]),
            score=np.concatenate([c["lift"], [r.lift for r in picks]]).astype(np.float64),
            co_buyers=np.concatenate([c["co_buyers"], [r.best_co_buyers for r in picks]]).astype(np.int64),
            reason=[f"bought together by {n} users (lift {lift:.1f})" for n, lift in zip(c["co_buyers"], c["lift"])]
            + [f"top complementary category #{r.rank} of {self._key[i]} ({r.co_purchases} co-purchases, lift "
               f"{r.lift:.1f})" for r in picks],
            source=np.array(["co-purchase"] * len(pos) + ["category complement"] * len(picks), dtype=object))

    def search(self, query: str, k: int = 10, method: str | None = None) -> pd.DataFrame:
        """Products matching a text query, best first (empty when no word of the query is known)."""
        if not str(query).strip():
            raise ValueError("the search query is empty: type a few words of a product's name, category or brand")
        pos, score = self.search_index.search(query, k, method)
        return self._frame(pos, score=score, price_band=self._band[pos], source=method or self.search_index.default)
