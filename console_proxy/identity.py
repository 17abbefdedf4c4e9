"""Who the events are about: the server's and the CLI's UUIDs and the server's version."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Identity:
    """What is attached to every outbound event; `None` means unknown and is sent as null."""

    server_uuid: str | None = None
    cli_uuid: str | None = None
    server_version: str | None = None
