"""`POST /v1/http`, the path the Hasura server and CLI post to (`hasura.endpoints.HTTP_URL`): one body, sent on to
the server's or the CLI's source by its topic. Pure, no I/O."""

from __future__ import annotations

from console_proxy.core.errors import BatchError
from console_proxy.sources import cli, server
from console_proxy.sources.base import Built, Context, Source, decode_json

MEDIA_TYPES = server.MEDIA_TYPES | cli.MEDIA_TYPES
MAX_BODY_BYTES = max(server.MAX_BODY_BYTES, cli.MAX_BODY_BYTES)
# The metric source of a body that is routed nowhere.
NAME = "hasura_http"


def route(body: bytes) -> Source:
    """The source of one body: the server's for its topics (and the bare `server_metrics` object the server sends
    without one), the CLI's for `cli` and `cli_test`. BatchError (400) for anything else."""
    document = decode_json(body)
    if isinstance(document, dict):
        topic = document.get("topic")
        if topic in server.SERVER_TOPICS or (topic is None and isinstance(document.get(server.RESOURCE_ROW), dict)):
            return server.SOURCE
        if topic in cli.CLI_TOPICS:
            return cli.SOURCE
    raise BatchError(400, "unknown topic", "unknown_topic")


def _build(body: bytes, context: Context) -> Built:
    return route(body).build(body, context)


# What the transport checks before routing (media types, size); the runtime is given the routed source itself, so
# each body is counted as the server's or the CLI's.
SOURCE = Source(name=NAME, build=_build, media_types=MEDIA_TYPES, max_body_bytes=MAX_BODY_BYTES)
