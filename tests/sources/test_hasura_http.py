"""POST /v1/http routed by topic: the server's bodies to the server source, the CLI's to the CLI source."""

from __future__ import annotations

import json

import pytest

from console_proxy.core.errors import BatchError
from console_proxy.sources import cli, hasura_http, server

from support import hasura_bodies


@pytest.mark.parametrize(
    ("body", "source"),
    [
        (hasura_bodies.V1_ALPHA, server.SOURCE),
        (hasura_bodies.V1_3, server.SOURCE),
        (hasura_bodies.V2_0, server.SOURCE),
        (hasura_bodies.V2_NEWEST, server.SOURCE),
        ({"topic": "server_metrics_v2_test", "data": {}}, server.SOURCE),
        ({"server_metrics": {"cpu": 1}}, server.SOURCE),
        (hasura_bodies.NESTED, cli.SOURCE),
        (hasura_bodies.FLAT_PATH, cli.SOURCE),
        (hasura_bodies.FLAT_FLAGS, cli.SOURCE),
    ],
)
def test_each_body_goes_to_its_source(body: dict[str, object], source: object) -> None:
    assert hasura_http.route(json.dumps(body).encode()) is source


@pytest.mark.parametrize(
    "body",
    [
        b'{"topic": "console", "data": {}}',
        b'{"topic": "cli2"}',
        b'{"server_metrics": 1}',
        b"[]",
        b'"cli"',
    ],
)
def test_a_body_of_no_known_topic_is_400(body: bytes) -> None:
    with pytest.raises(BatchError) as refused:
        hasura_http.route(body)
    assert (refused.value.status, refused.value.body, refused.value.label) == (
        400,
        b'{"error":"unknown topic"}',
        "unknown_topic",
    )


@pytest.mark.parametrize(("body", "reason"), [(b"", "empty_body"), (b"{", "invalid_json"), (b"\xff", "invalid_utf8")])
def test_a_body_that_is_not_json_is_400_as_everywhere(body: bytes, reason: str) -> None:
    with pytest.raises(BatchError) as refused:
        hasura_http.route(body)
    assert refused.value.label == reason
