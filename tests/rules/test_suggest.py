"""`rules suggest`'s inference: route templates from raw routes, allow entries from raw names. Pure."""

from __future__ import annotations

import random
import re
import uuid

from console_proxy.rules.route_rules import load_rules
from console_proxy.rules.suggest import MAX_LITERALS, suggest_allow, suggest_routes

# Templates the shipped rules lack (an operator's own pages), with the kind of value each parameter takes.
GENERATING = [
    "/reports/{REPORT}/view",
    "/reports/{REPORT}/export",
    "/teams/{TEAM}/members/{MEMBER}",
    "/billing/invoices/{INVOICE}",
]
_PARAM = re.compile(r"\{([A-Z_]+)\}")


def generated_log(seed: int = 7, per_template: int = 40) -> tuple[list[str], set[str]]:
    """Raw routes from GENERATING, every parameter a fresh value (ids, names, e-mails), and the values used."""
    rnd = random.Random(seed)
    values: set[str] = set()

    def value() -> str:
        kind = rnd.randrange(4)
        made = (
            str(uuid.UUID(int=rnd.getrandbits(128)))
            if kind == 0
            else str(rnd.randrange(10**6))
            if kind == 1
            else f"user{rnd.randrange(10**4)}@corp.example"
            if kind == 2
            else rnd.choice(["alice", "bob", "carol", "dave", "erin", "frank"]) + str(rnd.randrange(100))
        )
        values.add(made)
        return made

    routes = []
    for template in GENERATING:
        for _ in range(per_template):
            routes.append("/console" + _PARAM.sub(lambda m: value(), template))
    rnd.shuffle(routes)
    return routes, values


def _segments(routes: list[str]) -> list[list[str]]:
    rules = load_rules()
    return [segs for segs in (rules.segments(r) for r in routes) if segs is not None]


def test_the_proposed_templates_are_the_generating_ones() -> None:
    routes, values = generated_log()
    proposed = suggest_routes(_segments(routes))
    assert sorted(s.template for s in proposed) == sorted(GENERATING)
    assert sum(s.routes for s in proposed) == len(routes)
    text = "\n".join(s.template for s in proposed)
    assert not any(v in text for v in values)


def test_a_position_with_more_than_a_few_values_is_never_literal() -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    routes = [["docs", w, "page"] for w in words]
    [only] = suggest_routes(routes)
    assert only.template == "/docs/{DOC}/page"
    assert only.distinct == (("DOC", len(words)),)
    few = suggest_routes([["docs", w, "page"] for w in words[:MAX_LITERALS]])
    assert sorted(s.template for s in few) == sorted(f"/docs/{w}/page" for w in words[:MAX_LITERALS])


def test_a_value_that_is_not_a_word_is_never_literal() -> None:
    proposed = suggest_routes([["orders", "12345"], ["orders", "new"], ["orders", "Alice"]])
    assert sorted(s.template for s in proposed) == ["/orders/new", "/orders/{ORDER}"]


def test_a_parameter_takes_the_name_the_rules_have_at_its_position() -> None:
    rules = load_rules()
    routes = [["data", f"db{n}", "reports", str(n)] for n in range(6)]
    [only] = suggest_routes(routes, rules.parameter_at)
    assert only.template == "/data/{SOURCE}/reports/{REPORT}"


def test_allow_entries_are_the_names_of_the_constant_shape_only() -> None:
    shape = re.compile(r"(?:[A-Z][A-Za-z]*/)?[A-Z][A-Z0-9_]*")
    names = ["Reports/OPEN_REPORT", "bob@example.com", "Data/SET_TABLE", "free text here", "Reports/OPEN_REPORT"]
    assert suggest_allow(names, shape, lambda n: n == "Data/SET_TABLE") == ["Reports/OPEN_REPORT"]
