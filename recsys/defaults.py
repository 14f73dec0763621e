"""Defaults the pages open with, taken from the loaded store itself (never from the REES46 electronics catalog):
a search query that finds products, example words for hints, an example product id.

Pure functions over the products stage's cards (``product_id, name, brand, category_code, views, purchases``),
so a cosmetics store opens on its own best seller and a UCI wholesale store on words of its product names.
"""
from __future__ import annotations

import re

import pandas as pd

from recsys import schema as S
from recsys.products.search import STOPWORDS

_WORD = re.compile(r"[a-z][a-z0-9]*")
MIN_NAME_WORD = 3


def _ranked(cards: pd.DataFrame) -> pd.DataFrame:
    """Cards best first: purchases, then views, then the lower product id (ties are stable)."""
    by = [c for c in ("purchases", "views") if c in cards]
    return cards.sort_values(by + ["product_id"], ascending=[False] * len(by) + [True], kind="stable")


def _words(text: object) -> list[str]:
    """Lower-case words of a store string that the search knows (no stop words, no bare numbers)."""
    if not isinstance(text, str):
        return []
    return [w for w in _WORD.findall(text.lower().replace("_", " ")) if w not in STOPWORDS]


def _leaf(code: object) -> list[str]:
    return [] if code == S.UNKNOWN_CATEGORY else _words(str(code).split(".")[-1])


def _brand(brand: object) -> list[str]:
    return [] if brand == S.UNKNOWN_BRAND else _words(brand)


def _name_words(name: object, n: int = 2) -> list[str]:
    """The last ``n`` words of 3+ letters of a product name ("WHITE HANGING HEART T-LIGHT HOLDER" -> light holder):
    often the noun, always words of that product, so the query finds it."""
    return [w for w in _words(name) if len(w) >= MIN_NAME_WORD][-n:]


def default_query(cards: pd.DataFrame) -> str:
    """A query that finds the store's best seller: its brand and category leaf ("samsung smartphone"), else words
    of its name; the next best seller when a product has neither; "" for an empty catalog."""
    for r in _ranked(cards).head(50).itertuples(index=False):
        words = _brand(r.brand) + _leaf(r.category_code)
        if not words:
            words = _name_words(getattr(r, "name", ""))
        if words:
            return " ".join(dict.fromkeys(words))
    return ""


def example_words(cards: pd.DataFrame, n: int = 2) -> list[str]:
    """Up to ``n`` words worth searching for in this store: the category leaf and the brand with the most
    events, else the most frequent words of product names (weighted by events)."""
    if cards.empty:
        return []
    weight = cards.get("views", 0) + cards.get("purchases", 0) + 1
    out: list[str] = []
    for words in (cards["category_code"].map(lambda c: " ".join(_leaf(c))),
                  cards["brand"].map(lambda b: " ".join(_brand(b)))):
        top = weight.groupby(words).sum().drop("", errors="ignore")
        if len(top):
            out.append(str(top.sort_values(ascending=False, kind="stable").index[0]))
    if len(out) < n and "name" in cards:
        counts: dict[str, float] = {}
        for name, w in zip(cards["name"], weight):
            for word in dict.fromkeys(x for x in _words(name) if len(x) >= MIN_NAME_WORD + 1):
                counts[word] = counts.get(word, 0.0) + float(w)
        out += [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if w not in out]
    return list(dict.fromkeys(out))[:n]


def example_product_id(cards: pd.DataFrame) -> int | None:
    """The best seller's id (for an id box's placeholder); None for an empty catalog."""
    return None if cards.empty else int(_ranked(cards)["product_id"].iat[0])
