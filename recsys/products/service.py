"""The products stage read back: :class:`ProductService`, what the product explorer and the API call (the
stage's ``load``).

It serves the cards, co-view substitutes and co-purchase complements that ``stage`` built (``tables`` computes
them), feature neighbours for cold-start products (same category, same brand and a close price), embedding
neighbours from the model stage's item embeddings, and text search (``search``). Lookups are slices of arrays
sorted by product id: microseconds at October scale.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.artifacts import ArtifactError, read_manifest, require_stage
from recsys.products.stage import CARDS, CAT_COMPLEMENTS, COMPLEMENTS, STAGE, SUBSTITUTES, model_item_embeddings
from recsys.products.tables import with_names
from recsys.ranking import top_positions

log = logging.getLogger(__name__)


class ProductNotFound(KeyError):
    """The product id is not in the store's catalog."""


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
        cold = np.flatnonzero(~np.isin(self.ids, self._subs_ids)
                              & (c["category_code"].to_numpy() != S.UNKNOWN_CATEGORY))
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
        top = top_positions(s, k)
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
