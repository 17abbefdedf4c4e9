"""Action names fail closed (docs/design.md, "Route rules"): the allow list, the token, the drop list, the checks."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from console_proxy.core.errors import RulesError
from console_proxy.resources import default_rules_path
from console_proxy.rules.actions import DROPPED, KEPT, UNKNOWN
from console_proxy.rules.route_rules import ACTION_DROPPED, BAD_ACTION_SHAPE, RouteRules, load_rules

OWN = """\
version: 1
routes: [/]
actions:
  shape: '(?:@{0,2}[A-Za-z][A-Za-z0-9_]*/){0,3}[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*'
  drop: [App/*_REQUEST, Data/DROP_ME]
  allow:
    - Data/SET_TABLE
    - "@@router/LOCATION_CHANGE"
    - REMOTE_SCHEMA/UPDATE_*
    - Data/DROP_ME
"""


def _rules(tmp_path: Path, text: str = OWN) -> RouteRules:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def _refused(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        _rules(tmp_path, text)
    return [line.split(":", 1)[1] for line in caught.value.messages]


SHIPPED = load_rules()
SHIPPED_DOC = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
SHIPPED_ALLOW: list[str] = SHIPPED_DOC["actions"].get("allow") or []


@pytest.mark.parametrize(
    ("name", "outcome", "sent"),
    [
        ("Data/SET_TABLE", KEPT, "Data/SET_TABLE"),
        ("@@router/LOCATION_CHANGE", KEPT, "@@router/LOCATION_CHANGE"),
        ("REMOTE_SCHEMA/UPDATE_HEADERS", KEPT, "REMOTE_SCHEMA/UPDATE_HEADERS"),
        # a glob keeps only names of the file's shape: the rest of a prefix entry cannot carry data
        ("REMOTE_SCHEMA/UPDATE_bob@corp.com", UNKNOWN, "UNKNOWN"),
        ("Data/SET_TABLES", UNKNOWN, "UNKNOWN"),
        ("Data/SET_ALICE_AT_CORP_COM", UNKNOWN, "UNKNOWN"),
        ("bob@example.com", UNKNOWN, "UNKNOWN"),
        ("Data/SET_TABLE users", UNKNOWN, "UNKNOWN"),
        ("x" * 5000, UNKNOWN, "UNKNOWN"),
        ("", UNKNOWN, "UNKNOWN"),
        ("Data/SET_TABLE\n", UNKNOWN, "UNKNOWN"),
        # drop before allow
        ("Data/DROP_ME", DROPPED, None),
        ("App/ONGOING_REQUEST", DROPPED, None),
        (12, DROPPED, None),
        (None, DROPPED, None),
    ],
)
def test_what_leaves_of_a_name(tmp_path: Path, name: object, outcome: str, sent: str | None) -> None:
    rules = _rules(tmp_path)
    assert rules.classify_action(name) == (outcome, sent)
    assert rules.drop_reason(name) == (
        None if outcome != DROPPED else ACTION_DROPPED if isinstance(name, str) else BAD_ACTION_SHAPE
    )


def test_a_file_without_allow_sends_every_name_as_the_token(tmp_path: Path) -> None:
    rules = _rules(tmp_path, "version: 1\nroutes: [/]\nactions:\n  drop: [RNS_*]\n")
    assert rules.classify_action("Data/SET_TABLE") == (UNKNOWN, "UNKNOWN")
    assert rules.classify_action("RNS_SHOW_NOTIFICATION") == (DROPPED, None)
    assert not rules.action_known("Data/SET_TABLE")
    assert rules.allow_count is None


def test_the_token_is_the_files_own(tmp_path: Path) -> None:
    rules = _rules(tmp_path, OWN.replace("actions:\n", "actions:\n  unknown: OTHER_ACTION\n"))
    assert rules.classify_action("Data/NOPE") == (UNKNOWN, "OTHER_ACTION")
    assert rules.unknown_action == "OTHER_ACTION"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "bob@example.com",
            "7:7: 'allow' entry 'bob@example.com' is not shaped like an action constant",
        ),
        ("Data/SET_2024", "7:7: 'allow' entry 'Data/SET_2024' is not shaped like an action constant"),
        ("'*'", "7:7: 'allow' entry '*' starts with a wildcard"),
        ("'*/SET_TABLE'", "7:7: 'allow' entry '*/SET_TABLE' starts with a wildcard"),
    ],
)
def test_check_refuses_an_allow_entry_not_shaped_like_a_constant(tmp_path: Path, entry: str, message: str) -> None:
    text = "version: 1\nroutes: [/]\nactions:\n  shape: '[A-Z][A-Za-z/_]*'\n  allow:\n    - Data/SET_TABLE\n"
    [line] = _refused(tmp_path, text + f"    - {entry}\n")
    assert line.startswith(message), line


def test_without_a_shape_an_allow_entry_is_checked_against_the_constant_shape(tmp_path: Path) -> None:
    [line] = _refused(tmp_path, "version: 1\nroutes: [/]\nactions:\n  allow: [Data/SET_TABLE, Data/a b]\n")
    assert line.startswith("4:27: 'allow' entry 'Data/a b' is not shaped like an action constant (the default shape")


@pytest.mark.parametrize("token", ["unknown", "/UNKNOWN", "", "A B", "X" * 65])
def test_a_bad_token_is_refused(tmp_path: Path, token: str) -> None:
    [line] = _refused(tmp_path, f"version: 1\nroutes: [/]\nactions:\n  unknown: '{token}'\n")
    assert line.startswith("4:12: 'actions.unknown' is"), line


# ---- the shipped list -----------------------------------------------------------------------------------------


def _example(entry: str) -> str:
    """A name an allow entry stands for: its wildcards filled with letters of the constant shape."""
    return entry.replace("*", "X").replace("?", "X")


def test_the_shipped_rules_carry_an_allow_list() -> None:
    assert SHIPPED.allow_count is not None and SHIPPED.allow_count >= 100
    assert SHIPPED.unknown_action == "UNKNOWN"


@pytest.mark.parametrize("entry", SHIPPED_ALLOW)
def test_every_name_of_the_shipped_allow_list_passes(entry: str) -> None:
    name = _example(entry)
    dropped = SHIPPED.classify_action(name)[0] == DROPPED
    assert dropped or SHIPPED.classify_action(name) == (KEPT, name)


_KNOWN = {entry for entry in SHIPPED_ALLOW if "*" not in entry and "?" not in entry}
_ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
_CONSTANTISH = st.from_regex(r"(?:[A-Z][A-Za-z0-9]{0,12}/){0,3}[A-Z][A-Z0-9_]{0,40}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY_TEXT, _CONSTANTISH))
def test_any_name_not_on_the_list_leaves_as_the_token_whatever_its_shape(name: str) -> None:
    outcome, sent = SHIPPED.classify_action(name)
    if outcome == KEPT:
        assert SHIPPED.action_known(name) and sent == name
    else:
        assert sent in ("UNKNOWN", None)
        assert outcome == DROPPED or sent == "UNKNOWN"


_WORD = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=10)
_EMAIL = st.builds(lambda u, d: f"{u}@{d}.com", _WORD, _WORD)
_SECRET = st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=40)


def _folded(text: str) -> str:
    """`text` folded into a constant the way a careless console would: upper case, others to _."""
    return "".join(c if c.isalnum() else "_" for c in text.upper()).strip("_") or "X"


# Names that carry data, in the forms the held-out set had: an e-mail folded into a constant, a person as a
# namespace, a deep path, an access key, free text.
DATA_NAMES = st.one_of(
    _EMAIL.map(lambda e: f"Data/SET_{_folded(e)}"),
    _EMAIL,
    _WORD.map(lambda w: f"{w.capitalize()}/SET_TABLE"),
    st.lists(_WORD, min_size=3, max_size=6).map(lambda ws: "/".join(w.capitalize() for w in ws) + "/FETCH"),
    _SECRET.map(lambda s: f"Auth/SET_KEY_{s.upper()}"),
    _SECRET.map(lambda s: f"AKIA{s.upper()[:16]}"),
    st.lists(_WORD, min_size=2, max_size=8).map(" ".join),
)


@settings(max_examples=300, deadline=None)
@given(DATA_NAMES)
def test_names_that_carry_data_never_leave(name: str) -> None:
    outcome, sent = SHIPPED.classify_action(name)
    assert name in _KNOWN or sent != name, (name, outcome, sent)
