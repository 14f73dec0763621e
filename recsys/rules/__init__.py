"""The rules stage: Apriori / FP-growth association rules over baskets, under ``<root>/rules/``.

``build`` (``stage.build_rules_stage``) writes them; ``load`` (``stage.load_rules``) reads them back as a
``RulesResult`` (``mining.RulesResult``). Underneath: ``params`` (``RuleParams``), ``baskets`` (the basket SQL),
``mining`` (itemsets, rules, labels, on demand too), ``complements`` (category complements), ``spark`` (the
baskets and FP-growth on Spark); ``network`` draws the product-affinity graph.
"""
from recsys import lazy_exports

__all__ = ["RulesResult", "build", "load"]
# imported on first use, not here: see recsys.lazy_exports (two threads entering a package at once)
__getattr__, __dir__ = lazy_exports(__name__, {
    "RulesResult": "recsys.rules.mining:RulesResult",
    "build": "recsys.rules.stage:build_rules_stage",
    "load": "recsys.rules.stage:load_rules",
})
