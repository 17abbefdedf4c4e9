"""Every kind of invalid rules file is refused as a whole, with exact FILE:LINE:COL: messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console_proxy import RulesError, load_rules

TOP = "expected one of actions, cli, prefixes, routes, server, unknown, version"
GLOB = "expected 1 to 128 letters, digits, _ @ / : . - or spaces and the wildcards * and ?"
NAME = "expected upper-case letters, digits and _ starting with a letter, such as TABLE"

CASES = [
    # syntax
    (
        "version: 1\nroutes: [\n",
        [
            "3:1: found invalid YAML (expected the node content, but found "
            "'<stream end>'); expected a valid YAML mapping"
        ],
    ),
    (
        "version: 1\nroutes:\n  - /a\n - /b\n",
        [
            "4:2: found invalid YAML (expected <block end>, but found '<block sequence start>');"
            " expected a valid YAML mapping"
        ],
    ),
    (
        "version: 1\nroutes: [/a/{ID}]\n",
        [
            "2:13: found invalid YAML (expected ',' or ']', but got '{'); expected a valid YAML mapping"
            " (quote templates that contain braces inside [ ] or { })"
        ],
    ),
    ("", ["1:1: found an empty file; expected a mapping with 'version: 1' and 'routes'"]),
    ("# only a comment\n", ["1:1: found an empty file; expected a mapping with 'version: 1' and 'routes'"]),
    ("- /a\n", ["1:1: the file is a list; expected a mapping with 'version: 1' and 'routes'"]),
    # missing or wrong version
    ("routes: [/a]\n", ["1:1: missing key 'version'; expected 'version: 1' at the top level"]),
    ("version: 2\nroutes: [/a]\n", ["1:10: 'version' is a number (2); expected 1"]),
    ("version: '1'\nroutes: [/a]\n", ["1:10: 'version' is a string ('1'); expected 1"]),
    ("version: true\nroutes: [/a]\n", ["1:10: 'version' is a boolean (true); expected 1"]),
    # unknown keys
    ("version: 1\nroutes: [/a]\nroute: [/b]\n", [f"3:1: unknown key 'route' in the top level; {TOP}"]),
    (
        "version: 1\nroutes:\n  - path: /a\n    querry: {}\n",
        ["4:5: unknown key 'querry' in a route; expected one of path, query"],
    ),
    (
        "version: 1\nroutes: [/a]\nactions:\n  dropped: []\n",
        ["4:3: unknown key 'dropped' in 'actions'; expected one of allow, drop, shape, unknown"],
    ),
    (
        "version: 1\nroutes:\n  - /a/{OP: x|y}\n",
        ["3:5: unknown key '/a/{OP' in a route; expected one of path, query (quote a template that contains ': ')"],
    ),
    # wrong types
    ("version: 1\nroutes: /a\n", ["2:9: 'routes' is a string ('/a'); expected a non-empty list of route templates"]),
    ("version: 1\nroutes: []\n", ["2:9: 'routes' is a list; expected a non-empty list of route templates"]),
    ("version: 1\nroutes:\n", ["2:8: 'routes' is empty (null); expected a non-empty list of route templates"]),
    ("version: 1\n", ["1:1: missing key 'routes'; expected a list of route templates"]),
    (
        "version: 1\nroutes: [/a, 7]\n",
        ["2:14: a route is a number (7); expected a template string or a mapping with 'path'"],
    ),
    ("version: 1\nroutes: [[/a]]\n", ["2:10: a route is a list; expected a template string or a mapping with 'path'"]),
    ("version: 1\nroutes:\n  - query: {}\n", ["3:5: a route mapping has no 'path'; expected 'path: /template'"]),
    ("version: 1\nroutes:\n  - path: 3\n", ["3:11: 'path' is a number (3); expected a string"]),
    (
        "version: 1\nroutes:\n  - path: /a\n    query: [x]\n",
        ["4:12: 'query' is a list; expected a mapping of keys to placeholders"],
    ),
    (
        "version: 1\nroutes: [/a]\nprefixes: /console\n",
        ["3:11: 'prefixes' is a string ('/console'); expected a list of strings"],
    ),
    ("version: 1\nroutes: [/a]\nprefixes: [1]\n", ["3:12: an item of 'prefixes' is a number (1); expected a string"]),
    ("version: 1\nroutes: [/a]\nunknown: 5\n", ["3:10: 'unknown' is a number (5); expected a string"]),
    (
        "version: 1\nroutes: [/a]\nactions: [x]\n",
        ["3:10: 'actions' is a list; expected a mapping with 'shape', 'drop', 'allow' or 'unknown'"],
    ),
    (
        "version: 1\nroutes: [/a]\nactions:\n  shape: '[A-Z'\n",
        [
            "4:11: 'shape' '[A-Z' is not a regular expression (unterminated character set at position 0);"
            " expected one such as '[A-Z][A-Z0-9_]*'"
        ],
    ),
    (
        "version: 1\nroutes: [/a]\nactions:\n  shape: '[A-Z]+(x'\n",
        [
            "4:17: 'shape' '[A-Z]+(x' is not a regular expression (missing ), unterminated subpattern at position 6);"
            " expected one such as '[A-Z][A-Z0-9_]*'"
        ],
    ),
    (
        "version: 1\nroutes: [/a]\nactions:\n  shape: ''\n",
        ["4:10: 'shape' is empty; expected a regular expression such as '[A-Z][A-Z0-9_]*'"],
    ),
    (
        "version: 1\nroutes: [/a]\nactions:\n  shape: [A]\n",
        ["4:10: 'shape' is a list; expected a string"],
    ),
    ("version: 1\nroutes: [/a]\nactions: {drop: x}\n", ["3:17: 'drop' is a string ('x'); expected a list of strings"]),
    (
        "version: 1\nroutes: [/a]\nx: !!binary aGk=\n",
        [
            "3:1: unknown key 'x' in the top level; " + TOP.replace("expected", "expected"),
            "3:4: found a value tagged 'tag:yaml.org,2002:binary'; expected a plain string, number or boolean",
        ],
    ),
    (
        "version: 1\nroutes: &a [/x, *a]\n",
        [
            "2:9: a route is empty (null); expected a template string or a mapping with 'path'",
            "2:9: found an alias inside its own anchor; expected a value that ends",
        ],
    ),
    # duplicate YAML keys
    (
        "version: 1\nroutes: [/a]\nversion: 1\n",
        ["3:1: duplicate key 'version' (first at line 1); expected each key once"],
    ),
    (
        "version: 1\nroutes:\n  - path: /a\n    path: /b\n",
        ["4:5: duplicate key 'path' (first at line 3); expected each key once"],
    ),
    (
        "version: 1\nroutes:\n  - path: /a\n    query: {id: '{ID}', id: '{X}'}\n",
        ["4:25: duplicate key 'id' (first at line 4); expected each key once"],
    ),
    # duplicate or ambiguous templates
    (
        "version: 1\nroutes:\n  - /a/b\n  - /a/b\n",
        ["4:5: template '/a/b' repeats line 3 ('/a/b'); expected each template once"],
    ),
    (
        "version: 1\nroutes:\n  - '/a/{T: x|y}'\n  - '/a/{T: y|x}'\n",
        ["4:5: template '/a/{T: y|x}' repeats line 3 ('/a/{T: x|y}'); expected each template once"],
    ),
    (
        "version: 1\nroutes:\n  - /a/{X}\n  - /a/{Y}\n",
        [
            "4:5: template '/a/{Y}' has {Y} where line 3 ('/a/{X}') has {X} at the same position;"
            " expected one parameter per position"
        ],
    ),
    (
        "version: 1\nroutes:\n  - /a/{X}/b\n  - '/a/{X: p|q}/c'\n",
        [
            "4:5: template '/a/{X: p|q}/c' has {X:p|q} where line 3 ('/a/{X}/b') has {X} at the same position;"
            " expected one parameter per position"
        ],
    ),
    (
        "version: 1\nroutes:\n  - /a/{P*}\n  - /a/{Q*}\n",
        ["4:5: template '/a/{Q*}' is ambiguous with line 3 ('/a/{P*}'); expected each route to have one template"],
    ),
    (
        "version: 1\nroutes:\n  - /a/{P*}\n  - /a/{P*}\n",
        ["4:5: template '/a/{P*}' repeats line 3 ('/a/{P*}'); expected each route to have one template"],
    ),
    # bad templates, parameter and placeholder names
    (
        "version: 1\nroutes:\n  - a/b\n",
        ["3:5: template 'a/b' does not start with '/'; expected a path such as /data/{DB}"],
    ),
    (
        "version: 1\nroutes:\n  - /a//b\n",
        ["3:8: template '/a//b' has an empty segment; expected no '//' or trailing '/'"],
    ),
    ("version: 1\nroutes:\n  - /a/\n", ["3:8: template '/a/' has an empty segment; expected no '//' or trailing '/'"]),
    ("version: 1\nroutes:\n  - /data/{table}\n", [f"3:11: parameter name 'table' is not valid; {NAME}"]),
    ("version: 1\nroutes:\n  - /data/{}\n", [f"3:11: parameter name '' is not valid; {NAME}"]),
    ("version: 1\nroutes:\n  - /data/{1X}\n", [f"3:11: parameter name '1X' is not valid; {NAME}"]),
    (
        "version: 1\nroutes:\n  - /data/x{ID}\n",
        ["3:11: segment 'x{ID}' mixes text and braces; expected a literal or one {NAME}"],
    ),
    (
        "version: 1\nroutes:\n  - /data/{A}{B}\n",
        ["3:11: segment '{A}{B}' mixes text and braces; expected a literal or one {NAME}"],
    ),
    (
        "version: 1\nroutes:\n  - '/data/my table'\n",
        [
            "3:12: segment 'my table' has ' '; expected a literal of letters, digits and . _ ~ - @ :"
            " (percent-encoding in routes is undone before matching)"
        ],
    ),
    (
        "version: 1\nroutes:\n  - /files/{P*}/x\n",
        ["3:12: tail '{P*}' is not the last segment; expected it at the end only"],
    ),
    (
        "version: 1\nroutes:\n  - '/t/{TAB: a|b c}'\n",
        ["3:9: enumerated value 'b c' of {TAB} is not valid; expected literals such as browse|modify"],
    ),
    (
        "version: 1\nroutes:\n  - '/t/{TAB: a||b}'\n",
        ["3:9: enumerated value '' of {TAB} is not valid; expected literals such as browse|modify"],
    ),
    (
        "version: 1\nroutes:\n  - '/t/{TAB: a|a}'\n",
        ["3:9: {TAB} lists a value twice; expected each enumerated value once"],
    ),
    (
        "version: 1\nroutes:\n  - path: /q\n    query: {id: ID}\n",
        [
            "4:17: query key 'id' maps to 'ID'; expected a placeholder such as '{SOURCE}' or an enumeration such as"
            " '{DRIVER: postgres|mssql}'"
        ],
    ),
    (
        "version: 1\nroutes:\n  - path: /q\n    query: {id: '{P*}'}\n",
        [
            "4:17: query key 'id' maps to '{P*}'; expected a placeholder such as '{SOURCE}' or an enumeration such as"
            " '{DRIVER: postgres|mssql}'"
        ],
    ),
    (
        "version: 1\nroutes:\n  - path: /q\n    query: {id: '{id}'}\n",
        [f"4:18: parameter name 'id' is not valid; {NAME}"],
    ),
    (
        "version: 1\nroutes:\n  - path: /q\n    query: {'a b': '{ID}'}\n",
        ["4:13: query key 'a b' is not valid; expected letters, digits and . _ -"],
    ),
    (
        "version: 1\nroutes: [/a]\nunknown: /unknown\n",
        ["3:10: 'unknown' is '/unknown'; expected one upper-case segment such as /UNKNOWN"],
    ),
    (
        "version: 1\nroutes: [/a]\nprefixes: [console]\n",
        ["3:12: prefix 'console' is not valid; expected leading path segments such as /console or /hasura/console"],
    ),
    (
        "version: 1\nroutes: [/a]\nprefixes: [/]\n",
        ["3:12: prefix '/' is not valid; expected leading path segments such as /console or /hasura/console"],
    ),
    # bad globs
    ("version: 1\nroutes: [/a]\nactions:\n  drop: ['App/[A-Z]*']\n", [f"4:10: glob 'App/[A-Z]*' has '['; {GLOB}"]),
    ("version: 1\nroutes: [/a]\nactions:\n  drop: ['']\n", [f"4:10: glob '' is 0 characters long; {GLOB}"]),
    ("version: 1\nroutes: [/a]\nactions:\n  allow: ['Data/é']\n", [f"4:11: glob 'Data/é' has 'é'; {GLOB}"]),
    (
        "version: 1\nroutes: [/a]\nactions:\n  drop: ['" + "x" * 129 + "']\n",
        [f"4:10: glob '{'x' * 129}' is 129 characters long; {GLOB}"],
    ),
    # several problems are all reported, in file order
    (
        "routes:\n  - /a/{x}\n  - b\nextra: 1\n",
        [
            "1:1: missing key 'version'; expected 'version: 1' at the top level",
            f"2:8: parameter name 'x' is not valid; {NAME}",
            "3:5: template 'b' does not start with '/'; expected a path such as /data/{DB}",
            f"4:1: unknown key 'extra' in the top level; {TOP}",
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_invalid_file_is_refused_with_exact_messages(
    write_rules: Callable[[str], Path], text: str, expected: list[str]
) -> None:
    path = write_rules(text)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert caught.value.messages == [f"{path}:{line}" for line in expected]
    assert str(caught.value) == "\n".join(caught.value.messages)


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(RulesError) as caught:
        load_rules(missing)
    assert caught.value.messages == [f"{missing}:1:1: the file does not exist; expected a readable YAML rules file"]

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\nroutes: [/\xff]\n")
    with pytest.raises(RulesError) as caught:
        load_rules(binary)
    expected = f"{binary}:2:11: found a byte that is not UTF-8 (0xff); expected a UTF-8 text file"
    assert caught.value.messages == [expected]

    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    assert caught.value.messages == [
        f"{tmp_path}:1:1: the file cannot be read (Is a directory); expected a readable YAML rules file"
    ]


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        (
            ["/"],
            [
                "--prefix:1:1: prefix '/' is not valid; expected leading path "
                "segments such as /console or /hasura/console"
            ],
        ),
        (
            ["/ok", "/a b"],
            [
                "--prefix:1:2: prefix '/a b' is not valid; expected leading path segments such as /console or"
                " /hasura/console"
            ],
        ),
    ],
)
def test_bad_extra_prefixes(prefixes: list[str], expected: list[str]) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules(prefixes=prefixes)
    assert caught.value.messages == expected


@pytest.mark.parametrize(
    ("given", "stripped"), [("hasura/console", "/hasura/console"), ("/hasura/console/", "/hasura/console")]
)
def test_extra_prefix_spelling_is_normalized(given: str, stripped: str) -> None:
    assert load_rules(prefixes=[given]).prefixes == (stripped, "/console")
