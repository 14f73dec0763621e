"""The rules stage: Apriori / FP-growth association rules over baskets, under ``<root>/rules/``.

``build`` (``stage.build_rules_stage``) writes them; ``load`` (``stage.load_rules``) reads them back as a
``RulesResult`` (``mining.RulesResult``). Underneath: ``params`` (``RuleParams``), ``baskets`` (the basket SQL),
``mining`` (itemsets, rules, labels, on demand too), ``complements`` (category complements), ``spark`` (the
baskets and FP-growth on Spark); ``network`` draws the product-affinity graph.
"""
from recsys.rules.mining import RulesResult
from recsys.rules.stage import build_rules_stage as build, load_rules as load

__all__ = ["RulesResult", "build", "load"]
