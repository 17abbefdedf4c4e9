"""The default rules over every console section, the traps of the old anonymizer, and the engine's semantics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console_proxy import RouteRules, RulesError, RulesHolder, load_rules
from console_proxy.resources import default_rules_path
from console_proxy.rules.actions import ACTION_CACHE_SIZE
from console_proxy.rules.route_rules import ROUTE_CACHE_MAX_LENGTH, ROUTE_CACHE_SIZE

TOP_AND_API = [
    ("/console", "/"),
    ("/console/", "/"),
    ("/console/login", "/login"),
    ("/console/404", "/404"),
    ("/console/voyager-view", "/voyager-view"),
    ("/console/support/forums", "/support/forums"),
    ("/console/access-denied", "/access-denied"),
    ("/console/api-explorer", "/api-explorer"),
    ("/console/api/api-explorer", "/api/api-explorer"),
    ("/console/api/rest", "/api/rest"),
    ("/console/api/rest/list", "/api/rest/list"),
    ("/console/api/rest/create", "/api/rest/create"),
    ("/console/api/rest/details/getUserById", "/api/rest/details/REST_ENDPOINT"),
    ("/console/api/rest/edit/create%20order", "/api/rest/edit/REST_ENDPOINT"),
    ("/console/api/rest/details/list", "/api/rest/details/REST_ENDPOINT"),
    ("/console/api/allow-list", "/api/allow-list"),
    ("/console/api/allow-list/detail/allowed-queries", "/api/allow-list/detail/QUERY_COLLECTION"),
    ("/console/api/allow-list/detail/my_coll/operations", "/api/allow-list/detail/QUERY_COLLECTION/operations"),
    ("/console/api/allow-list/detail/my_coll/permissions", "/api/allow-list/detail/QUERY_COLLECTION/permissions"),
    ("/console/api/security", "/api/security"),
    ("/console/api/security/api_limits", "/api/security/api_limits"),
    ("/console/api/security/introspection", "/api/security/introspection"),
    ("/console/api/security/access_denied", "/api/security/access_denied"),
    ("/console/api/schema-registry", "/api/schema-registry"),
    ("/console/api/schema-registry/5f0c6e2a-1b2c", "/api/schema-registry/ID"),
]

SETTINGS = [
    ("/console/settings", "/settings"),
    ("/console/settings/metadata-actions", "/settings/metadata-actions"),
    ("/console/settings/metadata-status", "/settings/metadata-status"),
    ("/console/settings/metadata-status?is_redirected=true", "/settings/metadata-status?is_redirected=true"),
    (
        "/console/settings/metadata-status?is_redirected=admin%40corp",
        "/settings/metadata-status?is_redirected=IS_REDIRECTED",
    ),
    ("/console/settings/inherited-roles", "/settings/inherited-roles"),
    ("/console/settings/insecure-domain", "/settings/insecure-domain"),
    ("/console/settings/feature-flags", "/settings/feature-flags"),
    ("/console/settings/about", "/settings/about"),
    ("/console/settings/logout", "/settings/logout"),
    ("/console/settings/prometheus-settings", "/settings/prometheus-settings"),
    ("/console/settings/query-response-caching", "/settings/query-response-caching"),
    ("/console/settings/multiple-admin-secrets", "/settings/multiple-admin-secrets"),
    ("/console/settings/multiple-jwt-secrets", "/settings/multiple-jwt-secrets"),
    ("/console/settings/single-sign-on", "/settings/single-sign-on"),
    ("/console/settings/opentelemetry", "/settings/opentelemetry"),
    ("/console/settings/schema-registry", "/settings/schema-registry"),
    ("/console/settings/schema-registry/abc-123", "/settings/schema-registry/ID"),
    ("/console/metadata/status", "/metadata/status"),
    ("/console/metadata/actions", "/metadata/actions"),
    ("/console/metadata/allowed-queries", "/metadata/allowed-queries"),
    ("/console/settings/secret-page", "/UNKNOWN"),
]

DATA = [
    ("/console/data", "/data"),
    ("/console/data/manage", "/data/manage"),
    ("/console/data/manage/connect", "/data/manage/connect"),
    ("/console/data/manage/create", "/data/manage/create"),
    ("/console/data/manage/edit/prod_db", "/data/manage/edit/SOURCE"),
    ("/console/data/schema/manage", "/data/schema/manage"),
    ("/console/data/schema/manage/connect", "/data/schema/manage/connect"),
    ("/console/data/sql", "/data/sql"),
    ("/console/data/migrations", "/data/migrations"),
    ("/console/data/default", "/data/SOURCE"),
    ("/console/data/default/schema/public", "/data/SOURCE/schema/SCHEMA"),
    ("/console/data/default/schema/public/tables", "/data/SOURCE/schema/SCHEMA/tables"),
    ("/console/data/default/schema/public/views", "/data/SOURCE/schema/SCHEMA/views"),
    ("/console/data/default/schema/public/permissions", "/data/SOURCE/schema/SCHEMA/permissions"),
    ("/console/data/default/schema/public/table/add", "/data/SOURCE/schema/SCHEMA/table/add"),
    (
        "/console/data/default/schema/public/existing-table-view/add",
        "/data/SOURCE/schema/SCHEMA/existing-table-view/add",
    ),
    ("/console/data/default/schema/public/tables/users", "/data/SOURCE/schema/SCHEMA/tables/TABLE"),
    ("/console/data/default/schema/public/tables/users/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/default/schema/public/tables/users/edit", "/data/SOURCE/schema/SCHEMA/tables/TABLE/edit"),
    ("/console/data/default/schema/public/tables/users/insert", "/data/SOURCE/schema/SCHEMA/tables/TABLE/insert"),
    ("/console/data/default/schema/public/tables/users/modify", "/data/SOURCE/schema/SCHEMA/tables/TABLE/modify"),
    (
        "/console/data/default/schema/public/tables/users/relationships",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/relationships",
    ),
    (
        "/console/data/default/schema/public/tables/users/permissions",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/permissions",
    ),
    ("/console/data/default/schema/public/views/active_users/browse", "/data/SOURCE/schema/SCHEMA/views/VIEW/browse"),
    ("/console/data/default/schema/public/views/active_users/modify", "/data/SOURCE/schema/SCHEMA/views/VIEW/modify"),
    (
        "/console/data/default/schema/public/views/v/relationships",
        "/data/SOURCE/schema/SCHEMA/views/VIEW/relationships",
    ),
    ("/console/data/default/schema/public/views/v/permissions", "/data/SOURCE/schema/SCHEMA/views/VIEW/permissions"),
    ("/console/data/default/schema/public/functions/search_users", "/data/SOURCE/schema/SCHEMA/functions/FUNCTION"),
    ("/console/data/default/schema/public/functions/f/modify", "/data/SOURCE/schema/SCHEMA/functions/FUNCTION/modify"),
    (
        "/console/data/default/schema/public/functions/f/permissions",
        "/data/SOURCE/schema/SCHEMA/functions/FUNCTION/permissions",
    ),
    ("/console/data/default/schema/public/tables/users/secret-tab", "/UNKNOWN"),
    # v1: the same pages without the database segment
    ("/console/data/schema/public", "/data/schema/SCHEMA"),
    ("/console/data/schema/public/tables", "/data/schema/SCHEMA/tables"),
    ("/console/data/schema/public/tables/users/browse", "/data/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/schema/public/views/v/modify", "/data/schema/SCHEMA/views/VIEW/modify"),
    ("/console/data/schema/public/functions/f/permissions", "/data/schema/SCHEMA/functions/FUNCTION/permissions"),
    ("/console/data/schema/public/table/add", "/data/schema/SCHEMA/table/add"),
    # native queries, logical models, stored procedures
    ("/console/data/native-queries", "/data/native-queries"),
    ("/console/data/native-queries/create", "/data/native-queries/create"),
    ("/console/data/native-queries/logical-models", "/data/native-queries/logical-models"),
    ("/console/data/native-queries/stored-procedures", "/data/native-queries/stored-procedures"),
    ("/console/data/native-queries/stored-procedures/track", "/data/native-queries/stored-procedures/track"),
    (
        "/console/data/native-queries/native-query/mssql1/top_customers",
        "/data/native-queries/native-query/SOURCE/NATIVE_QUERY",
    ),
    (
        "/console/data/native-queries/logical-models/pg/customer",
        "/data/native-queries/logical-models/SOURCE/LOGICAL_MODEL",
    ),
    (
        "/console/data/native-queries/logical-models/pg/customer/permissions",
        "/data/native-queries/logical-models/SOURCE/LOGICAL_MODEL/permissions",
    ),
]

DATA_V2 = [
    ("/console/data/v2/manage", "/data/v2/manage"),
    ("/console/data/v2/manage/connect?driver=postgres", "/data/v2/manage/connect?driver=postgres"),
    ("/console/data/v2/manage/connect?driver=acme_db", "/data/v2/manage/connect?driver=DRIVER"),
    (
        "/console/data/v2/manage/database?database=prod_db&driver=mssql",
        "/data/v2/manage/database?database=SOURCE&driver=mssql",
    ),
    ("/console/data/v2/manage/database/add", "/data/v2/manage/database/add"),
    ("/console/data/v2/manage/database/edit?database=prod", "/data/v2/manage/database/edit?database=SOURCE"),
    (
        "/console/data/v2/manage/table?database=db&table=%5B%22public%22%2C%22users%22%5D",
        "/data/v2/manage/table?database=SOURCE&table=TABLE",
    ),
    (
        "/console/data/v2/manage/table/browse?table=%7B%22name%22%3A%22users%22%7D&database=db",
        "/data/v2/manage/table/browse?database=SOURCE&table=TABLE",
    ),
    ("/console/data/v2/manage/table/permissions?database=db", "/data/v2/manage/table/permissions?database=SOURCE"),
    ("/console/data/v2/manage/table/secret_op?database=db", "/data/v2/manage/table/OP?database=SOURCE"),
    (
        "/console/data/v2/manage/function?function=%7B%22schema%22%3A%22s%22%2C%22name%22%3A%22f%22%7D",
        "/data/v2/manage/function?function=FUNCTION",
    ),
    ("/console/data/v2/manage/function/modify?database=db", "/data/v2/manage/function/modify?database=SOURCE"),
    ("/console/data/v2/edit?database=db&filter=email%3Dx", "/data/v2/edit?database=SOURCE"),
    ("/console/data/v2/manage?database=a&database=b", "/data/v2/manage?database=SOURCE"),
]

REMOTE_ACTIONS_EVENTS = [
    ("/console/remote-schemas", "/remote-schemas"),
    ("/console/remote-schemas/manage", "/remote-schemas/manage"),
    ("/console/remote-schemas/manage/schemas", "/remote-schemas/manage/schemas"),
    ("/console/remote-schemas/manage/add", "/remote-schemas/manage/add"),
    ("/console/remote-schemas/manage/countries/details", "/remote-schemas/manage/REMOTE_SCHEMA/details"),
    ("/console/remote-schemas/manage/countries/modify", "/remote-schemas/manage/REMOTE_SCHEMA/modify"),
    ("/console/remote-schemas/manage/countries/permissions", "/remote-schemas/manage/REMOTE_SCHEMA/permissions"),
    ("/console/remote-schemas/manage/countries/relationships", "/remote-schemas/manage/REMOTE_SCHEMA/relationships"),
    ("/console/actions", "/actions"),
    ("/console/actions/manage", "/actions/manage"),
    ("/console/actions/manage/actions", "/actions/manage/actions"),
    ("/console/actions/manage/add", "/actions/manage/add"),
    ("/console/actions/manage/add-oas", "/actions/manage/add-oas"),
    ("/console/actions/types", "/actions/types"),
    ("/console/actions/types/manage", "/actions/types/manage"),
    ("/console/actions/types/relationships", "/actions/types/relationships"),
    ("/console/actions/manage/createUser/modify", "/actions/manage/ACTION/modify"),
    ("/console/actions/manage/createUser/relationships", "/actions/manage/ACTION/relationships"),
    ("/console/actions/manage/createUser/codegen", "/actions/manage/ACTION/codegen"),
    ("/console/actions/manage/createUser/permissions", "/actions/manage/ACTION/permissions"),
    ("/console/events", "/events"),
    ("/console/events/data", "/events/data"),
    ("/console/events/data/manage", "/events/data/manage"),
    ("/console/events/data/add", "/events/data/add"),
    ("/console/events/cron", "/events/cron"),
    ("/console/events/cron/manage", "/events/cron/manage"),
    ("/console/events/cron/add", "/events/cron/add"),
    ("/console/events/data/user_created/modify", "/events/data/EVENT_TRIGGER/modify"),
    ("/console/events/data/user_created/pending", "/events/data/EVENT_TRIGGER/pending"),
    ("/console/events/data/user_created/processed", "/events/data/EVENT_TRIGGER/processed"),
    ("/console/events/data/user_created/logs", "/events/data/EVENT_TRIGGER/logs"),
    ("/console/events/cron/nightly/modify", "/events/cron/CRON_TRIGGER/modify"),
    ("/console/events/cron/nightly/pending", "/events/cron/CRON_TRIGGER/pending"),
    ("/console/events/cron/nightly/processed", "/events/cron/CRON_TRIGGER/processed"),
    ("/console/events/cron/nightly/logs", "/events/cron/CRON_TRIGGER/logs"),
    ("/console/events/one-off-scheduled-events", "/events/one-off-scheduled-events"),
    ("/console/events/one-off-scheduled-events/info", "/events/one-off-scheduled-events/info"),
    ("/console/events/one-off-scheduled-events/add", "/events/one-off-scheduled-events/add"),
    ("/console/events/one-off-scheduled-events/pending", "/events/one-off-scheduled-events/pending"),
    ("/console/events/one-off-scheduled-events/processed", "/events/one-off-scheduled-events/processed"),
    ("/console/events/one-off-scheduled-events/logs", "/events/one-off-scheduled-events/logs"),
    ("/console/events/manage/triggers", "/events/manage/triggers"),
    ("/console/events/manage/triggers/add", "/events/manage/triggers/add"),
    ("/console/events/manage/triggers/t1/processed", "/events/manage/triggers/EVENT_TRIGGER/processed"),
    ("/console/events/manage/triggers/t1/pending", "/events/manage/triggers/EVENT_TRIGGER/pending"),
    ("/console/events/manage/triggers/t1/running", "/events/manage/triggers/EVENT_TRIGGER/running"),
    ("/console/events/manage/triggers/t1/logs", "/events/manage/triggers/EVENT_TRIGGER/logs"),
    ("/console/events/manage/triggers/t1/modify", "/events/manage/triggers/EVENT_TRIGGER/modify"),
]

# The ways the console's regular expressions leaked (reference file), each with the answer that leaks nothing.
TRAPS = [
    # the contract's own examples
    (
        "/console/data/default/schema/public/tables/users/browse?filter=email%3B%24eq%3Ba%40b.c",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    ),
    ("/console/no/such/page", "/UNKNOWN"),
    # prefix text inside identifiers
    ("/console/data/console/schema/console/tables/consoles/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    (
        "/console/data/my_console_db/schema/public/tables/console/modify",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/modify",
    ),
    ("/consoles/data/default", "/UNKNOWN"),
    ("/data/console", "/data/SOURCE"),
    # identifiers equal to keywords
    ("/console/data/manage/schema/public/tables/users/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/schema/schema/schema/tables/tables/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/sql/schema/tables/tables/tables/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/v2/schema/public", "/data/SOURCE/schema/SCHEMA"),
    # a fixed page wins at its own depth, as in the console's router (a database named v2 shows the v2 page)
    ("/console/data/v2", "/data/v2"),
    ("/console/data/edit", "/data/edit"),
    ("/console/data/native-queries/schema/x", "/data/native-queries/SOURCE/NATIVE_QUERY"),
    ("/console/data/native-queries/schema/x/secret-tab", "/data/native-queries/SOURCE/NATIVE_QUERY/TAB"),
    ("/console/data/native-queries/schema/public/tables/t/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/default/schema/public/tables/browse/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/schema/add", "/data/schema/SCHEMA"),
    ("/console/remote-schemas/manage/add/modify", "/remote-schemas/manage/REMOTE_SCHEMA/modify"),
    ("/console/remote-schemas/manage/schemas/details", "/remote-schemas/manage/REMOTE_SCHEMA/details"),
    ("/console/events/data/manage/modify", "/events/data/EVENT_TRIGGER/modify"),
    ("/console/events/cron/add/logs", "/events/cron/CRON_TRIGGER/logs"),
    ("/console/actions/manage/add/codegen", "/actions/manage/ACTION/codegen"),
    ("/console/events/manage/triggers/add/logs", "/events/manage/triggers/EVENT_TRIGGER/logs"),
    # encoded /, ?, #, spaces and non-ASCII names
    ("/console/data/a%2Fb/schema/c%3Fd/tables/e%23f/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/my%20db/schema/my%20schema/tables/my%20table/edit", "/data/SOURCE/schema/SCHEMA/tables/TABLE/edit"),
    (
        "/console/data/b%C3%BCcher/schema/%E6%97%A5%E6%9C%AC/tables/%D1%82%D0%B0%D0%B1/insert",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/insert",
    ),
    ("/console/data/bücher/schema/日本/tables/таблица/insert", "/data/SOURCE/schema/SCHEMA/tables/TABLE/insert"),
    ("/console/data/my db/schema/my-schema/tables/my.table/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/%2Fconsole/schema/%2F/tables/%2F%2F/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/%73chema", "/data/SOURCE"),
    ("/console/data/100%/schema/%zz/tables/%E0%A4/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    # a raw ? or # in a name cuts the path there: what remains is still anonymized
    ("/console/data/default/schema/public/tables/what?/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE"),
    ("/console/data/default/schema/pub#lic/tables/users/browse", "/data/SOURCE/schema/SCHEMA"),
    # trailing slashes, doubled slashes, fragments
    ("/console/data/default/schema/public/tables/users/browse/", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/console/data/default/schema/public//", "/data/SOURCE/schema/SCHEMA"),
    ("/console/settings/about#section-2", "/settings/about"),
    # query strings carrying row values are dropped
    (
        "/console/data/default/schema/public/tables/users/browse?filter=ssn%3B%24eq%3B123-45-6789&sort=name%3Basc",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    ),
    ("/console/settings/about?secret=hunter2", "/settings/about"),
    # full URLs
    (
        "https://hasura.example.com/console/data/db/schema/s/tables/t/browse?x=1#y",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    ),
    ("http://localhost:9695/console/settings/about", "/settings/about"),
    ("http://user:pw@10.0.0.1:9695/console/api/rest/details/getUser", "/api/rest/details/REST_ENDPOINT"),
    ("http://localhost:9695", "/"),
    # a route without the prefix is matched as it is
    ("/data/default/schema/public/tables/users/browse", "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"),
    ("/settings/about", "/settings/about"),
    # the prefix is stripped once, as whole segments only
    ("/console/console/settings/about", "/UNKNOWN"),
    ("/hasura/console/settings/about", "/UNKNOWN"),
    # the console's clean-up sends its index page as "" (the prefix alone is the index page too)
    ("", "/"),
    ("   ", "/"),
    # fail closed on anything else
    ("/console/Data/default", "/UNKNOWN"),
    ("/console/" + "a/" * 80, "/UNKNOWN"),
    ("\x00\ud800", "/UNKNOWN"),
]


@pytest.mark.parametrize(("url", "expected"), TOP_AND_API + SETTINGS + DATA + DATA_V2 + REMOTE_ACTIONS_EVENTS + TRAPS)
def test_default_rules_anonymize(default_rules: RouteRules, url: str, expected: str) -> None:
    assert default_rules.anonymize(url) == expected


LONGER_PREFIX = [
    (
        "/hasura/console/data/default/schema/public/tables/users/browse",
        "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse",
    ),
    ("https://example.com/hasura/console/settings/about", "/settings/about"),
    ("/hasura/console/hasura/console/settings/about", "/UNKNOWN"),
    ("/hasura/consoles/settings/about", "/UNKNOWN"),
    ("/console/settings/about", "/settings/about"),
    ("/hasura/data/default", "/UNKNOWN"),
]


@pytest.mark.parametrize(("url", "expected"), LONGER_PREFIX)
def test_longer_prefix_from_the_caller(url: str, expected: str) -> None:
    rules = load_rules(prefixes=["/hasura/console"])
    assert rules.prefixes == ("/hasura/console", "/console")
    assert rules.anonymize(url) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("App/ONGOING_REQUEST", None),
        ("App/DONE_REQUEST", None),
        ("App/FAILED_REQUEST", None),
        ("App/ERROR_REQUEST", None),
        ("RNS_SHOW_NOTIFICATION", None),
        ("RNS_HIDE_NOTIFICATION", None),
        ("RNS_REMOVE_ALL_NOTIFICATIONS", None),
        ("Data/SET_TABLE", "Data/SET_TABLE"),
        ("@@router/LOCATION_CHANGE", "@@router/LOCATION_CHANGE"),
        ("CLICK_EVENT", "CLICK_EVENT"),
        ("Main/RUN_TIME_ERROR", "Main/RUN_TIME_ERROR"),
        # on no allow entry, whatever the shape: the token
        ("A" * 128, "UNKNOWN"),
        ("a b:c.d-e", "UNKNOWN"),
        ("", "UNKNOWN"),
        ("x" * 128, "UNKNOWN"),
        ("A" * 129, "UNKNOWN"),
        ("Data/SET_TABLE\n", "UNKNOWN"),
        ("Data/SET_TABLE users", "UNKNOWN"),
        ("Data/users_table_2024", "UNKNOWN"),
        ("bob@example.com", "UNKNOWN"),
        ("@@redux/INITa.b.c", "UNKNOWN"),
        ("A/B/C/D/E", "UNKNOWN"),
        ("Data/{users}", "UNKNOWN"),
        ("Data/é", "UNKNOWN"),
    ],
)
def test_default_action_rules(default_rules: RouteRules, name: str, expected: str | None) -> None:
    assert default_rules.action(name) == expected


GLOBS = """version: 1
routes: [/]
actions:
  drop: ["App/*_REQUEST", "RNS_?IDE_*", Exact/NAME]
  allow: [App/*, RNS_*, Exact/*, Other/*]
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("App/DONE_REQUEST", None),
        ("App/_REQUEST", None),
        ("App/DONE_REQUEST_X", "App/DONE_REQUEST_X"),
        ("RNS_HIDE_NOTIFICATION", None),
        ("RNS_SHOW_NOTIFICATION", "RNS_SHOW_NOTIFICATION"),
        ("Exact/NAME", None),
        ("Exact/NAMES", "Exact/NAMES"),
        ("Other/App/DONE_REQUEST", "Other/App/DONE_REQUEST"),
    ],
)
def test_drop_globs(write_rules: Callable[[str], Path], name: str, expected: str | None) -> None:
    assert load_rules(write_rules(GLOBS)).action(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Data/SET_TABLE", "Data/SET_TABLE"),
        ("Data/DROP", None),
        ("@@router/LOCATION_CHANGE", "@@router/LOCATION_CHANGE"),
        ("Custom/users-table", "UNKNOWN"),
        ("@@router/LOCATION_CHANGED", "UNKNOWN"),
        ("Data/bob@corp.com", "UNKNOWN"),
    ],
)
def test_allowlist_mode(write_rules: Callable[[str], Path], name: str, expected: str | None) -> None:
    text = 'version: 1\nroutes: [/]\nactions:\n  drop: ["*/DROP"]\n  allow: ["Data/*", "@@router/LOCATION_CHANGE"]\n'
    assert load_rules(write_rules(text)).action(name) == expected


ENGINE = """version: 1
prefixes: [/app, /a/b]
unknown: /OTHER
routes:
  - /
  - /x/{ID}
  - /x/new
  - /x/new/edit
  - "/tab/{TAB: one|two}"
  - /files/{PATH*}
  - /files/readme
  - /files/{DIR}/index
  - path: /q
    query:
      id: "{ID}"
      mode: "{MODE: fast|slow}"
      a.b-c_d: "{K}"
"""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", "/"),
        ("/app", "/"),
        ("/a/b", "/"),
        ("/a", "/OTHER"),
        ("/x/new", "/x/new"),
        ("/x/old", "/x/ID"),
        ("/x/new/edit", "/x/new/edit"),
        ("/x/new/other", "/OTHER"),
        ("/tab/one", "/tab/one"),
        ("/tab/two", "/tab/two"),
        ("/tab/three", "/tab/TAB"),
        ("/tab/t%77o", "/tab/two"),
        ("/files/readme", "/files/readme"),
        ("/files/a", "/files/PATH"),
        ("/files/a/index", "/files/DIR/index"),
        ("/files/a/b/c/d", "/files/PATH"),
        ("/files/readme/x", "/files/PATH"),
        ("/files", "/OTHER"),
        ("/q?id=secret&mode=fast&junk=1", "/q?id=ID&mode=fast"),
        ("/q?mode=%66ast", "/q?mode=fast"),
        ("/q?mode=secret", "/q?mode=MODE"),
        ("/q?mode=fast+", "/q?mode=MODE"),
        ("/q?a.b-c_d=1&id", "/q?a.b-c_d=K&id=ID"),
        ("/q?%69d=x", "/q?id=ID"),
        ("/q?junk=1", "/q"),
        ("/q?", "/q"),
        ("/app/a/b/q", "/OTHER"),
        ("/app/x/1", "/x/ID"),
    ],
)
def test_engine_semantics(write_rules: Callable[[str], Path], url: str, expected: str) -> None:
    rules = load_rules(write_rules(ENGINE))
    assert rules.anonymize(url) == expected
    assert rules.template_count == 9


def test_source_and_default_path() -> None:
    rules = load_rules()
    assert rules.source == str(default_rules_path())
    assert load_rules("route_rules.yaml").source == "route_rules.yaml"
    assert rules.template_count == 193
    assert rules.prefixes == ("/console",)
    assert rules.unknown == "/UNKNOWN"


def test_holder_reload_swaps_or_keeps(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("version: 1\nroutes: [/a]\n")
    holder = RulesHolder(path, prefixes=["/console"])
    first = holder.rules
    assert first.anonymize("/console/a") == "/a"

    path.write_text("version: 1\nroutes: [/b]\n", encoding="utf-8")
    assert holder.reload() == []
    assert holder.rules is not first
    assert holder.rules.anonymize("/console/b") == "/b"
    assert holder.rules.anonymize("/console/a") == "/UNKNOWN"

    good = holder.rules
    path.write_text("version: 1\nroutes: [/b]\nextra: 1\n", encoding="utf-8")
    assert holder.reload() == [
        f"{path}:3:1: unknown key 'extra' in the top level; expected one of actions, cli, prefixes, routes, server,"
        " unknown, version"
    ]
    assert holder.rules is good

    path.unlink()
    assert holder.reload() == [f"{path}:1:1: the file does not exist; expected a readable YAML rules file"]
    assert holder.rules is good


def test_cached_answers_are_the_computed_ones() -> None:
    rules = load_rules()
    for url, expected in TOP_AND_API:
        assert [rules.anonymize(url), rules.anonymize(url)] == [expected, expected]
    assert [rules.action("Data/SET_TABLE"), rules.action("Data/SET_TABLE")] == ["Data/SET_TABLE"] * 2


def test_the_caches_hold_a_bounded_number_of_short_routes_and_actions() -> None:
    # They hold raw routes in memory (docs/privacy.md): a bounded number, none longer than the limit.
    rules = load_rules()
    routes = rules._cached_anonymize.cache_info  # type: ignore[attr-defined]
    actions = rules.actions._cached.cache_info  # type: ignore[attr-defined]
    long_route = "/console/data/" + "d" * ROUTE_CACHE_MAX_LENGTH
    assert rules.anonymize(long_route) == "/data/SOURCE"
    assert routes().currsize == 0
    for n in range(ROUTE_CACHE_SIZE + 10):
        assert rules.anonymize(f"/console/data/db{n}/schema/s/tables/t/browse") == (
            "/data/SOURCE/schema/SCHEMA/tables/TABLE/browse"
        )
    assert routes().currsize == ROUTE_CACHE_SIZE
    for n in range(ACTION_CACHE_SIZE + 10):
        rules.action(f"Data/ACTION_{n}")
    assert actions().currsize == ACTION_CACHE_SIZE
    assert load_rules()._cached_anonymize.cache_info().currsize == 0  # type: ignore[attr-defined]


def test_holder_refuses_a_bad_file_at_construction(write_rules: Callable[[str], Path]) -> None:
    path = write_rules("routes: [/a]\n")
    with pytest.raises(RulesError) as caught:
        RulesHolder(path)
    assert caught.value.messages == [f"{path}:1:1: missing key 'version'; expected 'version: 1' at the top level"]


SHAPED = """version: 1
routes: [/]
actions:
  shape: '[A-Z][A-Z_]*'
  drop: [NOISY_*]
  allow: [KEEP_*, OTHER]
"""


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("KEEP_THIS", "kept"),
        ("OTHER", "kept"),
        ("keep_this", "unknown"),
        ("KEEP THIS", "unknown"),
        ("KEEP_1", "unknown"),
        ("NOISY_ONE", "dropped"),
        ("UNLISTED", "unknown"),
        (42, "dropped"),
    ],
)
def test_drop_then_allow_with_the_shape(tmp_path: Path, name: object, outcome: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(SHAPED)
    rules = load_rules(path)
    assert rules.action_shape == "[A-Z][A-Z_]*"
    sent = {"kept": name, "unknown": "UNKNOWN", "dropped": None}[outcome]
    assert rules.classify_action(name) == (outcome, sent)
    assert rules.action(name) == sent


def test_a_file_without_allow_sends_the_token_for_every_name(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nroutes: [/]\n")
    rules = load_rules(path)
    assert rules.action_shape is None
    assert [rules.action(n) for n in ("Data/SET_TABLE", "a b:c.d-e", "x" * 129)] == ["UNKNOWN"] * 3
    assert rules.drop_reason("x" * 129) is None


def test_a_shape_never_widens_the_basic_limit(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nroutes: [/]\nactions:\n  shape: '.*'\n  allow: [Data/SET_TABLE, A*]\n")
    rules = load_rules(path)
    assert rules.action("Data/SET_TABLE") == "Data/SET_TABLE"
    assert rules.action("<script>") == "UNKNOWN"
    assert rules.action("A" * 129) == "UNKNOWN"
    assert rules.action("A" * 128) == "A" * 128
