"""Who the events are about: the server's and the CLI's UUIDs and the server's version.

The Hasura server is asked with a short timeout, in the background; `IdentityProvider.current` never waits.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from console_proxy.core.events import Identity, valid_uuid, valid_version
from console_proxy.core.settings import Settings
from console_proxy.hasura.cli_config import cli_config_path, read_cli_config, write_cli_config

__all__ = ["Identity", "IdentityProvider"]

logger = logging.getLogger("console_proxy")

DEFAULT_LOOKUP_TIMEOUT_S = 3.0
# A failed lookup is tried again after this, doubling each time up to --identity-refresh-s.
RETRY_FIRST_S = 2.0
MAX_RESPONSE_BYTES = 65536
CATALOG_STATE_QUERY = {"type": "get_catalog_state", "args": {}}


class IdentityProvider:
    """Holds the current Identity and refreshes it. `__init__` does no I/O; call `load_cli_identity()`
    (sync, cli mode) before serving and run `run()` in the lifespan."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        home: Path | None = None,
        timeout_s: float = DEFAULT_LOOKUP_TIMEOUT_S,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._home = home
        self._timeout_s = timeout_s
        self._sleep = sleep
        self._cli_uuid_from: str | None = None
        self._fixed_server_uuid = valid_uuid(settings.server_uuid)
        self._current = Identity(server_uuid=self._fixed_server_uuid)
        self.problems: list[str] = []
        """What went wrong in the last refresh, one short phrase per lookup (no secrets, no payloads)."""

    @property
    def current(self) -> Identity:
        """The identity to attach now; never blocks."""
        return self._current

    def sources(self) -> dict[str, str | None]:
        """Where each attached ID came from, for people: `server_uuid_from` ("--server-uuid", or the Hasura server
        asked, without credentials), `cli_uuid_from` (the CLI config file); None for an ID that is null."""
        current = self._current
        server_from = None
        if current.server_uuid is not None:
            if self._fixed_server_uuid is not None:
                server_from = "--server-uuid"
            elif self._settings.hasura_endpoint is not None:
                server_from = f"the Hasura server at {display_url(self._settings.hasura_endpoint)}"
        return {
            "server_uuid_from": server_from,
            "cli_uuid_from": self._cli_uuid_from if current.cli_uuid is not None else None,
        }

    @property
    def cli_config_path(self) -> Path:
        """The CLI config file this provider reads (and creates), whatever the mode."""
        return cli_config_path(self._settings, home=self._home)

    def load_cli_identity(self, *, create: bool = True) -> dict[str, Any]:
        """In cli mode, read the CLI config's `uuid` into `cli_uuid`, creating the file or the key with a random
        UUID when missing (unless `create` is false). Returns the config as read. Server mode: nothing, `{}`."""
        if self._settings.mode != "cli":
            return {}
        path = self.cli_config_path
        config = read_cli_config(path)
        cli_uuid = valid_uuid(config.get("uuid"))
        if cli_uuid is None and create:
            existed = path.exists()
            config = {**config, "uuid": str(uuid.uuid4())}
            try:
                write_cli_config(path, config, replace=existed)
                logger.info(
                    "%s the Hasura CLI's config file %s with a new uuid, as the CLI itself would",
                    "wrote a uuid into" if existed else "created",
                    path,
                )
            except FileExistsError:
                config = read_cli_config(path)
            except OSError as error:
                logger.warning("cannot write the CLI config %s (%s); cli_uuid stays null", path, error.strerror)
                config = {key: value for key, value in config.items() if key != "uuid"}
            cli_uuid = valid_uuid(config.get("uuid"))
        self._current = dataclasses.replace(self._current, cli_uuid=cli_uuid)
        self._cli_uuid_from = str(path)
        return config

    async def refresh(self) -> None:
        """Ask the Hasura server once for its UUID (unless `--server-uuid`) and version, within the timeout.

        A failed lookup keeps the previous value; an answer that is not a strict UUID or version is null.
        """
        endpoint = self._settings.hasura_endpoint
        if endpoint is None:
            return
        base = endpoint.rstrip("/")
        # Only the metadata API needs the secret; /v1/version is public.
        secret = {"X-Hasura-Admin-Secret": self._settings.admin_secret} if self._settings.admin_secret else {}
        results: dict[str, str | None] = {}
        self.problems = []
        # The overall deadline below is what bounds a refresh; httpx's own per-operation timeout is only a backstop,
        # set later so that a slow server is always reported the same way.
        # trust_env off unless the operator opts in: HTTP_PROXY, ALL_PROXY or a .netrc would otherwise receive
        # the request, admin secret included, even for a loopback endpoint.
        async with httpx.AsyncClient(
            transport=self._transport, timeout=2 * self._timeout_s, trust_env=self._settings.identity_trust_env
        ) as client:

            async def lookup(key: str, method: str, url: str, body: dict[str, Any] | None, field: str) -> None:
                document = await self._fetch(client, method, url, body, secret if body is not None else {})
                if document is not None:
                    results[key] = document.get(field) if isinstance(document, dict) else None

            # httpx's timeout is per read; the deadline also bounds a server that answers one byte at a time.
            with anyio.move_on_after(self._timeout_s) as deadline:
                async with anyio.create_task_group() as group:
                    if self._fixed_server_uuid is None:
                        metadata_url = base + "/v1/metadata"
                        group.start_soon(lookup, "server_uuid", "POST", metadata_url, CATALOG_STATE_QUERY, "id")
                    group.start_soon(lookup, "server_version", "GET", base + "/v1/version", None, "version")
        if deadline.cancelled_caught:
            self._problem("timed out after %gs", self._timeout_s)
        update: dict[str, str | None] = {}
        if "server_uuid" in results:
            update["server_uuid"] = valid_uuid(results["server_uuid"])
        if "server_version" in results:
            update["server_version"] = valid_version(results["server_version"])
        self._current = dataclasses.replace(self._current, **update)
        logger.debug(
            "identity refreshed: server_uuid %s, server_version %s",
            "known" if self._current.server_uuid else "unknown",
            self._current.server_version,
        )

    async def _fetch(
        self, client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> Any:
        path = httpx.URL(url).path
        try:
            async with client.stream(method, url, json=body, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        self._problem("%s: response over %d bytes, ignored", path, MAX_RESPONSE_BYTES)
                        return None
                    chunks.append(chunk)
            if response.status_code != 200:
                self._problem("%s: HTTP %d", path, response.status_code)
                return None
            return json.loads(b"".join(chunks))
        except httpx.HTTPError as error:
            self._problem("%s failed: %s", path, type(error).__name__)
        except (ValueError, RecursionError):
            self._problem("%s: the answer is not JSON", path)
        return None

    def _problem(self, message: str, *args: object) -> None:
        logger.warning("identity lookup " + message, *args)
        self.problems.append(message % args)

    async def run(self) -> None:
        """Refresh now and then every `identity_refresh_s` until cancelled; after a failed lookup, again in
        RETRY_FIRST_S, doubling up to `identity_refresh_s`, each retry logged with its time."""
        every = self._settings.identity_refresh_s
        retry = RETRY_FIRST_S
        while True:
            await self.refresh()
            if self.problems and self._settings.hasura_endpoint is not None:
                wait = min(retry, every)
                retry *= 2
                logger.warning("identity lookup failed; next try in %gs", wait)
            else:
                wait, retry = every, RETRY_FIRST_S
            await self._sleep(wait)


def display_url(url: str) -> str:
    """`url` without user info or query: either may hold a credential."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"
