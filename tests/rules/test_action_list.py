"""The shipped action allow list and the script that generates it (tools/hasura_actions.py).

The script runs on small made-up console trees written here (no Hasura code): it must find the names the
console can dispatch, constant and prefix-built, and never a name built from a run-time value. The shipped
block must carry its provenance on every line and hold only constant-shaped, data-free names.
"""

from __future__ import annotations

import re
from pathlib import Path

import hasura_actions
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "route_rules.yaml"

HEADERS = """\
const generateHeaderSyms = (prefix = 'DEFAULT_HEADER') => {
  return {
    UPDATE_HEADERS: `${prefix}/UPDATE_HEADERS`,
    RESET_HEADER: `${prefix}/RESET_HEADER`,
  };
};
const generateReducer = (eventPrefix, defaults) => {
  const { UPDATE_HEADERS } = generateHeaderSyms(eventPrefix);
};
export { generateHeaderSyms };
export default generateReducer;
"""

WIDGETS = """\
import { push } from 'react-router-redux';
import headerReducer from '../Layout/HeaderReducer';
import { generateHeaderSyms } from '../Layout/HeaderReducer';
const FETCH = 'Widgets/FETCH_WIDGETS';
const FETCHED =
  '@widgetList/WIDGETS_FETCHED';
const DEEP = 'Widgets/Filter/SET_LIMIT';
// const OLD = 'Widgets/COMMENTED_OUT';
/* const OLDER = 'Widgets/IN_A_BLOCK_COMMENT'; */
const NS = 'Gadgets';
const BUILT = `${NS}/BUILT_FROM_A_CONSTANT`;
const events = generateHeaderSyms('WIDGET_HEADER');
const reducer = combineReducers({ headers: headerReducer('GADGET_HEADER', []) });
const fromUser = (name) => ({ type: `Widgets/SET_${name.toUpperCase()}` });
const fromInput = (table) => ({ type: `${table}/ROW_CHANGED` });
const named = generateHeaderSyms(userTypedName);
const notAName = 'data/schema/public';
const sql = 'SELECT';
"""

TELEMETRY = """\
export type Clicked = { type: 'CLICK_EVENT'; data: { id: string } };
export type Connected = { type: 'CONNECT_DB'; data: {} };
export const sendTelemetryEvent = (event) => {};
export const track = (id) => {
  sendTelemetryEvent({
    type: 'INPUT_CHANGE_EVENT',
    data: { id },
  });
};
"""


def tree(root: Path, files: dict[str, str], commits: dict[str, str] | None = None) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if commits is not None:
        listing = "".join(f"{rel}\t{commit}\n" for rel, commit in commits.items())
        (root / "COMMITS.tsv").write_text(listing, encoding="utf-8")
    return root


@pytest.fixture
def console(tmp_path: Path) -> Path:
    return tree(
        tmp_path / "v1",
        {
            "console/src/components/Layout/HeaderReducer.js": HEADERS,
            "console/src/components/Widgets/Actions.js": WIDGETS,
            "console/src/components/Widgets/__tests__/Actions.test.js": "const T = 'Tests/NOT_SHIPPED';\n",
            "console/src/components/Widgets/Widgets.stories.tsx": "const S = 'Stories/NOT_SHIPPED';\n",
            "console/README.md": "'Docs/NOT_SOURCE'\n",
        },
        {"console/src/components/Widgets/Actions.js": "a" * 40},
    )


@pytest.fixture
def newest(tmp_path: Path) -> Path:
    return tree(
        tmp_path / "ce",
        {
            "frontend/libs/console/legacy-ce/src/lib/telemetry/client.ts": TELEMETRY,
            # The header module is not in this copy: the builder comes from the other era.
            "frontend/libs/console/legacy-ce/src/lib/Remote/reducer.js": (
                "import headerReducer from '../Layout/HeaderReducer';\n"
                "const r = headerReducer('REMOTE_HEADER', []);\n"
                "const W = 'Widgets/FETCH_WIDGETS';\n"
            ),
        },
    )


def names(*eras: tuple[str, Path]) -> dict[str, set[hasura_actions.Origin]]:
    return hasura_actions.extract(list(eras)).names


def test_constants_prefix_built_names_and_the_library_actions_are_found(console: Path) -> None:
    found = names(("v1", console))
    assert set(found) == {
        "Widgets/FETCH_WIDGETS",
        "@widgetList/WIDGETS_FETCHED",
        "Widgets/Filter/SET_LIMIT",
        "Gadgets/BUILT_FROM_A_CONSTANT",
        # generateHeaderSyms('WIDGET_HEADER'), headerReducer('GADGET_HEADER') through generateReducer's
        # forwarding, and the default of the builder's own parameter
        "WIDGET_HEADER/UPDATE_HEADERS",
        "WIDGET_HEADER/RESET_HEADER",
        "GADGET_HEADER/UPDATE_HEADERS",
        "GADGET_HEADER/RESET_HEADER",
        "DEFAULT_HEADER/UPDATE_HEADERS",
        "DEFAULT_HEADER/RESET_HEADER",
        "@@router/CALL_HISTORY_METHOD",
    }


def test_names_built_from_run_time_values_are_never_listed(console: Path) -> None:
    found = names(("v1", console))
    built = [name for name in found if "ROW_CHANGED" in name or name.startswith("Widgets/SET_")]
    assert built == []
    assert not any("COMMENTED_OUT" in name or "BLOCK_COMMENT" in name for name in found)
    assert not any(name.startswith(("Tests/", "Stories/", "Docs/")) for name in found)


def test_the_newest_consoles_explicit_events_and_a_builder_from_another_era(console: Path, newest: Path) -> None:
    found = names(("v1", console), ("legacy-ce", newest))
    assert {"CLICK_EVENT", "CONNECT_DB", "INPUT_CHANGE_EVENT"} <= set(found)
    assert {"REMOTE_HEADER/UPDATE_HEADERS", "REMOTE_HEADER/RESET_HEADER"} <= set(found)
    eras = {origin.era for origin in found["Widgets/FETCH_WIDGETS"]}
    assert eras == {"v1", "legacy-ce"}
    (origin,) = [o for o in found["Widgets/FETCH_WIDGETS"] if o.era == "v1"]
    assert origin == hasura_actions.Origin("v1", "console/src/components/Widgets/Actions.js", "a" * 40)


RULES_TEXT = """\
prefixes: [/console]
actions:
  shape: 'SHAPE'
  drop:
    - App/DONE_REQUEST

routes:
  - /
""".replace(
    "SHAPE",
    r"(?:@@[a-z][a-z0-9]*/|@[a-z][A-Za-z0-9]*/|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+/|(?:[A-Z][A-Za-z0-9]*/){1,3})?"
    r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*",
)


def run(rules: Path, *eras: tuple[str, Path], check: bool = False) -> int:
    argv = [arg for name, root in eras for arg in ("--era", f"{name}={root}")] + ["--rules", str(rules)]
    return hasura_actions.main([*argv, "--check"] if check else argv)


def test_the_block_is_written_between_markers_deterministically_and_check_sees_drift(
    tmp_path: Path, console: Path, newest: Path
) -> None:
    rules = tmp_path / "route_rules.yaml"
    rules.write_text(RULES_TEXT, encoding="utf-8")
    assert run(rules, ("v1", console), ("legacy-ce", newest), check=True) == 1  # no block yet
    assert rules.read_text(encoding="utf-8") == RULES_TEXT  # --check writes nothing
    assert run(rules, ("v1", console), ("legacy-ce", newest)) == 0
    first = rules.read_text(encoding="utf-8")
    assert run(rules, ("legacy-ce", newest), ("v1", console)) == 0  # order of eras changes nothing
    assert rules.read_text(encoding="utf-8") == first
    assert run(rules, ("v1", console), ("legacy-ce", newest), check=True) == 0
    loaded = yaml.safe_load(first)
    allow = loaded["actions"]["allow"]
    assert allow == sorted(allow)
    assert loaded["actions"]["drop"] == ["App/DONE_REQUEST"] and loaded["routes"] == ["/"]
    assert first.count(hasura_actions.BEGIN) == 1 and first.count(hasura_actions.END) == 1
    # A hand edit inside the block is drift; re-running puts it back.
    rules.write_text(first.replace("    - Widgets/FETCH_WIDGETS", "    - Widgets/HAND_EDITED"), encoding="utf-8")
    assert run(rules, ("v1", console), ("legacy-ce", newest), check=True) == 1
    assert run(rules, ("v1", console), ("legacy-ce", newest)) == 0
    assert rules.read_text(encoding="utf-8") == first


def test_a_name_outside_the_rules_files_shape_is_left_out(tmp_path: Path, console: Path) -> None:
    rules = tmp_path / "route_rules.yaml"
    rules.write_text(RULES_TEXT.replace("(?:@@[a-z][a-z0-9]*/|@[a-z][A-Za-z0-9]*/|", "(?:@@[a-z][a-z0-9]*/|"))
    assert run(rules, ("v1", console)) == 0
    allow = yaml.safe_load(rules.read_text(encoding="utf-8"))["actions"]["allow"]
    assert "@widgetList/WIDGETS_FETCHED" not in allow and "Widgets/FETCH_WIDGETS" in allow


def test_an_empty_tree_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "route_rules.yaml"
    rules.write_text(RULES_TEXT, encoding="utf-8")
    (tmp_path / "empty").mkdir()
    assert run(rules, ("v1", tmp_path / "empty")) == 2
    assert rules.read_text(encoding="utf-8") == RULES_TEXT


# The shipped list.

SHIPPED = RULES.read_text(encoding="utf-8")
BLOCK = SHIPPED[SHIPPED.index(hasura_actions.BEGIN) : SHIPPED.index(hasura_actions.END)]
ENTRY = re.compile(r"^    - ('?)([^' ]+)\1  # (.+)$")
ENTRIES = [line for line in BLOCK.splitlines() if line.startswith("    - ")]
ALLOW: list[str] = yaml.safe_load(SHIPPED)["actions"]["allow"]
SHAPE = re.compile(yaml.safe_load(SHIPPED)["actions"]["shape"])
ERAS = ("console", "legacy-ce")


def test_the_shipped_block_names_the_repository_and_the_commits_read() -> None:
    assert "hasura/graphql-engine" in BLOCK
    for era in ERAS:
        assert re.search(rf"# era {era}: \d+ commit\(s\) read", BLOCK)
    assert re.search(r"#   [0-9a-f]{40}$", BLOCK, re.M)


def test_every_shipped_name_has_its_provenance_and_appears_once() -> None:
    assert len(ENTRIES) == len(ALLOW) > 300
    assert len(set(ALLOW)) == len(ALLOW)
    assert sorted(ALLOW) == ALLOW
    for line in ENTRIES:
        match = ENTRY.match(line)
        assert match is not None, line
        for part in match.group(3).split("; "):
            assert re.fullmatch(r"(console|legacy-ce): \S+\.(js|jsx|ts|tsx)@[0-9a-f]{12}( \(\+\d+ more\))?", part), line


def test_every_shipped_name_is_constant_shaped() -> None:
    assert [name for name in ALLOW if SHAPE.fullmatch(name) is None] == []


def test_the_widened_shape_admits_exactly_the_two_real_families() -> None:
    for name in (
        "@remoteSchema/RESET",
        "@customFunction/RESET",
        "REMOTE_SCHEMA/UPDATE_HEADERS",
        "API_HEADER/RESET_HEADER",
    ):
        assert SHAPE.fullmatch(name), name
    for name in ("@remoteSchema/Deep/RESET", "REMOTE_SCHEMA/Deep/RESET", "@Alice/RESET", "remote_schema/RESET"):
        assert SHAPE.fullmatch(name) is None, name
    assert {"@remoteSchema/RESET", "REMOTE_SCHEMA/UPDATE_HEADERS", "@@router/LOCATION_CHANGE"} <= set(ALLOW)


EMAIL = re.compile(r"(?i)AT_[A-Z0-9]+_(COM|ORG|NET|IO|DE|CO)\b|@[a-z0-9-]+\.[a-z]")
BLOB = re.compile(r"[A-Z0-9]{20,}")


def test_no_shipped_name_looks_like_it_carries_data() -> None:
    for name in ALLOW:
        assert not EMAIL.search(name), name
        assert name.count("/") <= 3, name  # at most three namespaces
        assert not BLOB.search(name.replace("_", " ")), name  # no long run without word breaks
        assert not re.search(r"[0-9]{4,}", name), name  # no long numbers (dates, ids)
        assert len(name) <= 80, name


def test_the_drop_list_and_the_allow_list_do_not_overlap_in_purpose() -> None:
    # The console's own drop list stays dropped: the allow list may hold its names (they are real), but the
    # drop list is checked first, so they never leave.
    drop = set(yaml.safe_load(SHIPPED)["actions"]["drop"])
    assert drop <= set(ALLOW) | {"RNS_SHOW_NOTIFICATION", "RNS_HIDE_NOTIFICATION", "RNS_REMOVE_ALL_NOTIFICATIONS"}
