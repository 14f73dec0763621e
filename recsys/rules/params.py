"""The rules stage's parameters: what a basket is (``basket``, ``scope``, ``granularity``), the mining thresholds
and the guards, as :class:`RuleParams`, with the choices the affinity page offers.

``baskets`` turns them into SQL over the events, ``mining`` mines with them, ``stage`` builds the defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

from recsys import schema as S

SCOPES: dict[str, tuple[str, ...]] = {
    "purchases": (S.PURCHASE,), "purchases_carts": (S.PURCHASE, S.CART), "views": (S.VIEW,)}
BASKETS = ("session", "user_day")
GRANULARITIES = ("product", "category", "top_category", "brand")
ALGORITHMS = ("apriori", "fpgrowth")


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
