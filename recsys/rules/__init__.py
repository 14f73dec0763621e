"""The rules stage: Apriori / FP-growth association rules over baskets, under ``<root>/rules/``.

``build`` (``stage.build_rules_stage``) writes them; ``load`` (``stage.load_rules``) reads them back as a
``RulesResult``; ``network`` draws the product-affinity graph; ``spark`` counts the baskets on Spark.
"""
from recsys.rules.stage import RulesResult, build_rules_stage as build, load_rules as load

__all__ = ["RulesResult", "build", "load"]
