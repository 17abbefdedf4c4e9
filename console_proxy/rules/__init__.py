"""Route rules: the located YAML reader, the schema checks, the segment trie and the public RouteRules."""

from __future__ import annotations

from console_proxy.rules.route_rules import RouteRules, RulesHolder, load_rules

__all__ = ["RouteRules", "RulesHolder", "load_rules"]
