"""For every template of the default file, no identifier survives: the output is the template's own text."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from console_proxy import RouteRules, load_rules
from console_proxy.resources import default_rules_path
from console_proxy.rules.route_rules import _first_path
from console_proxy.rules.trie import walk

# Read the templates with plain PyYAML and a regular expression, independently of the engine under test.
_DOC = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
TEMPLATES: list[str] = [r if isinstance(r, str) else r["path"] for r in _DOC["routes"]]
_VAR = re.compile(r"\{\s*([A-Z][A-Z0-9_]*)\s*(?::\s*([^}]*))?\}\Z")


def _parts(template: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(kind, text, enum values) per segment: kind is "literal" or "var"."""
    parts: list[tuple[str, str, tuple[str, ...]]] = []
    for seg in template.strip("/").split("/") if template != "/" else []:
        m = _VAR.match(seg)
        if m is None:
            parts.append(("literal", seg, ()))
        else:
            values = tuple(v.strip() for v in m.group(2).split("|")) if m.group(2) else ()
            parts.append(("var", m.group(1), values))
    return parts


PARTS = {t: _parts(t) for t in TEMPLATES}
# Everything an output segment may be: a literal, a placeholder or an enumerated value of the file.
VOCABULARY = (
    {text for parts in PARTS.values() for _, text, _ in parts}
    | {v for parts in PARTS.values() for _, _, values in parts for v in values}
    | {"UNKNOWN"}
)
QUERY_VOCABULARY: dict[str, set[str]] = {}
for _route in _DOC["routes"]:
    for _key, _spec in (_route.get("query", {}) if isinstance(_route, dict) else {}).items():
        _m = _VAR.match(_spec)
        assert _m is not None
        QUERY_VOCABULARY.setdefault(_key, set()).update([_m.group(1), *(_m.group(2) or "").replace(" ", "").split("|")])
KEYWORDS = sorted({text for parts in PARTS.values() for kind, text, _ in parts if kind == "literal"})
PREFIXES = ["", "/console", "http://localhost:9695/console", "https://hasura.example.com", "/console/"]


def _expected(template: str, chosen: list[str]) -> str:
    out = []
    for (kind, text, values), ident in zip(PARTS[template], chosen, strict=True):
        out.append(text if kind == "literal" else ident if ident in values else text)
    return "/" + "/".join(out)


def _raw_is_safe(ident: str) -> bool:
    # The console encodes these; sent raw they would change the path's shape, not leak.
    return not any(c in ident for c in "/?#%") and ident.strip() == ident


@st.composite
def instances(draw: st.DrawFn, identifiers: st.SearchStrategy[str]) -> tuple[str, str, list[str]]:
    template = draw(st.sampled_from(TEMPLATES))
    chosen: list[str] = []
    path = ""
    for kind, text, values in PARTS[template]:
        if kind == "literal":
            chosen.append(text)
            path += "/" + text
            continue
        known = bool(values) and draw(st.booleans())
        ident = draw(st.sampled_from(values)) if known else draw(identifiers)
        chosen.append(ident)
        raw = draw(st.booleans()) and _raw_is_safe(ident)
        path += "/" + (ident if raw else quote(ident, safe=""))
    prefix = draw(st.sampled_from(PREFIXES))
    url = (prefix.rstrip("/") + path) or "/"
    if draw(st.booleans()):
        url += "/"
    row_value = draw(identifiers)
    url += draw(st.sampled_from(["", "?filter=" + quote(row_value, safe=""), "#" + row_value.replace("\n", "")]))
    return template, url, chosen


IDENTIFIERS = st.text(min_size=1, max_size=24)


def _assert_nothing_derived(output: str) -> None:
    path, _, query = output.partition("?")
    assert all(seg in VOCABULARY for seg in path.strip("/").split("/") if seg), output
    for pair in query.split("&") if query else []:
        key, _, value = pair.partition("=")
        assert value in QUERY_VOCABULARY.get(key, set()), output


@settings(max_examples=1500, deadline=None)
@given(instances(IDENTIFIERS))
def test_any_identifier_becomes_its_placeholder(default_rules: RouteRules, case: tuple[str, str, list[str]]) -> None:
    template, url, chosen = case
    output = default_rules.anonymize(url)
    _assert_nothing_derived(output)
    names = [ident for (kind, _, _), ident in zip(PARTS[template], chosen, strict=True) if kind == "var"]
    if not any(ident in KEYWORDS for ident in names):
        assert output == _expected(template, chosen)


@settings(max_examples=600, deadline=None)
@given(instances(st.one_of(st.sampled_from(KEYWORDS), IDENTIFIERS)))
def test_identifiers_equal_to_keywords_never_leak(default_rules: RouteRules, case: tuple[str, str, list[str]]) -> None:
    # A name equal to a keyword may route to another page of the same shape (a database named `schema`),
    # but what comes out is still made of the file's own words.
    _template, url, _chosen = case
    _assert_nothing_derived(default_rules.anonymize(url))


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_with_hostile_names(default_rules: RouteRules, template: str) -> None:
    hostile = ["a/b?c#d", "bücher & 日本", "100%", "%2F", " x ", "manage", "schema", "tables", "add", "console"]
    for ident in hostile:
        chosen = [text if kind == "literal" else ident for kind, text, _ in PARTS[template]]
        url = "/console" + "".join("/" + quote(c, safe="") for c in chosen) + "?filter=" + quote(ident, safe="")
        output = default_rules.anonymize(url)
        _assert_nothing_derived(output)
        if ident not in KEYWORDS:
            assert output == _expected(template, chosen), (template, ident)


_FIRST_PATH_RULES = load_rules()
_WORDS = st.sampled_from([*sorted(VOCABULARY), "x", "db1"])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(TEMPLATES), st.lists(_WORDS, min_size=20, max_size=20), st.integers(-2, 2), st.data())
def test_the_first_path_is_what_the_full_search_finds(
    template: str, words: list[str], cut: int, data: st.DataObject
) -> None:
    # The loop that follows the first path only answers when it ends on a template; then it must be walk's answer.
    # Routes are templates with any word of the file (or none of it) at each variable, some cut short or longer.
    segs = [
        text if kind == "literal" and data.draw(st.booleans()) else word
        for (kind, text, _), word in zip(PARTS[template], words, strict=False)
    ]
    segs = segs[: len(segs) + cut] if cut < 0 else segs + words[:cut]
    root = _FIRST_PATH_RULES._root
    fast: list[str] = []
    full: list[str] = []
    found = _first_path(root, segs, fast)
    if found is not None:
        assert (found, fast) == (walk(root, segs, 0, full), full)


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_first_path_answers_for_every_template(template: str) -> None:
    # A name no rule knows at every variable: the loop needs no search, and ends where walk does.
    segs = [text if kind == "literal" else "x" for kind, text, _ in PARTS[template]]
    root = _FIRST_PATH_RULES._root
    fast: list[str] = []
    full: list[str] = []
    found = _first_path(root, segs, fast)
    assert found is not None
    assert (found, fast) == (walk(root, segs, 0, full), full)
