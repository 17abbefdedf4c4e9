"""Every page of every console era (tests/data/console_routes.yaml) at its exact anonymized shape."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import pytest
import yaml

from console_proxy.rules.route_rules import RouteRules, load_rules

from support.paths import ROOT, ROUTES_CORPUS

CORPUS_FILE = ROUTES_CORPUS
CORPUS: list[dict[str, Any]] = yaml.safe_load(CORPUS_FILE.read_text(encoding="utf-8"))
ERAS = {"v1.x", "v2.0", "v2.x", "v2.x sanitised", "ee", "newest"}
# What may appear in an anonymized route: template literals, upper-case placeholders, known query values.
_OUT_SEGMENT = re.compile(r"[a-z0-9$][a-z0-9_.\-$A-Z]*|[A-Z][A-Z0-9_]*")


@pytest.fixture(scope="module")
def rules() -> RouteRules:
    return load_rules(ROOT / "route_rules.yaml")


def _identifiers(url: str, shape: str) -> list[str]:
    """The URL's values that the shape does not keep: path segments where the shape has a placeholder,
    and every query value the shape does not show as it is."""
    parts = urlsplit(url if "://" in url else "http://h" + url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments[:1] == ["console"]:
        segments = segments[1:]
    shape_path, _, shape_query = shape.partition("?")
    shape_segments = [s for s in shape_path.split("/") if s]
    found = [seg for seg, out in zip(segments, shape_segments, strict=False) if seg != out]
    kept_values = {pair.partition("=")[2] for pair in shape_query.split("&") if pair}
    for pair in parts.query.split("&"):
        value = unquote_plus(pair.partition("=")[2])
        if value and value not in kept_values:
            found.append(value)
    return found


def test_the_corpus_covers_every_era_and_the_issue_list() -> None:
    assert {entry["era"] for entry in CORPUS} == ERAS
    assert len(CORPUS) >= 250
    shapes = {entry["shape"] for entry in CORPUS}
    # The pages issue 9 names, each present with its exact shape.
    assert {
        "/about",
        "/ui-elements",
        "/support",
        "/api",
        "/api/allow-list/detail",
        "/settings/allowed-queries",
        "/events/manage",
        "/events/data/EVENT_TRIGGER",
        "/data/SOURCE/sql",
        "/data/SOURCE/schema",
        "/data/manage/source/SOURCE",
        "/data/manage/source/SOURCE/permission-summary",
        "/data/manage/database/add",
        "/data/manage/database/edit",
        "/data/native-queries/SOURCE/NATIVE_QUERY",
        "/data/native-queries/SOURCE/NATIVE_QUERY/details",
        "/data/native-queries/logical-models/SOURCE/LOGICAL_MODEL/details",
        "/actions/manage/ACTION",
        "/remote-schemas/manage/REMOTE_SCHEMA",
        "/data/SOURCE/schema/SCHEMA/views/VIEW",
        "/heroku-callback",
        "/neon-integration/callback",
        "/slack-integration/callback",
        "/data/edit",
        "/data/model-count-summary",
        "/data/v2",
    } <= shapes


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{i}:{e['url'][:80]}" for i, e in enumerate(CORPUS)])
def test_each_route_has_its_exact_shape_and_leaks_nothing(rules: RouteRules, entry: dict[str, Any]) -> None:
    out = rules.anonymize(entry["url"])
    assert out == entry["shape"], f"{entry['era']} {entry['pattern']} ({entry['source']})"
    path, _, query = out.partition("?")
    assert all(_OUT_SEGMENT.fullmatch(seg) for seg in path.split("/") if seg)
    literals = {seg for seg in path.split("/") if seg} | {p.partition("=")[2] for p in query.split("&")}
    for identifier in _identifiers(entry["url"], entry["shape"]):
        if identifier in literals:  # a database named "edit" where the shape has the literal "edit" elsewhere
            continue
        assert identifier not in out


def test_the_whole_corpus_is_right(rules: RouteRules) -> None:
    """The figure for the report: how many corpus entries come out exactly right."""
    right = Counter(entry["era"] for entry in CORPUS if rules.anonymize(entry["url"]) == entry["shape"])
    total = Counter(entry["era"] for entry in CORPUS)
    assert right == total


@pytest.mark.parametrize(
    "url",
    [
        "/console/heroku-callback?code=4%2F0AX4XfWh&state=s3cr3t",
        "/console/neon-integration/callback?code=neon-code-123&state=abc",
        "/console/slack-integration/callback?code=xoxb-1234&state=abc",
        "/console/oauth2/callback?code=ee-code-999&state=abc",
    ],
)
def test_oauth_callback_codes_never_pass(rules: RouteRules, url: str) -> None:
    out = rules.anonymize(url)
    assert "?" not in out
    assert "code" not in out and "state" not in out
