"""ASGI plumbing of the collector: reading a body with a limit, and fixed answers that never echo the input."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Receive, Send

JSON = b"application/json"


class BodyTooLarge(Exception):  # noqa: N818 -- an answer, not a failure
    """The body is longer than the collector reads."""


class Disconnected(Exception):  # noqa: N818
    """The client went away before its body was read."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; BodyTooLarge past `limit` bytes (the rest is not read), Disconnected."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def respond(
    send: Send, status: int, body: bytes, content_type: bytes = JSON, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def error_body(error: str) -> bytes:
    return json.dumps({"error": error}, separators=(",", ":")).encode()


async def refuse(
    send: Send, status: int, error: str, retry_after: int | None = None, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A fixed `{"error": ...}` answer; `Retry-After` when the client should come back."""
    extra = list(headers)
    if retry_after is not None:
        extra.append((b"retry-after", str(retry_after).encode()))
    await respond(send, status, error_body(error), headers=extra)
