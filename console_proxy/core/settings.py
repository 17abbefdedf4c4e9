"""Settings of the proxy: one frozen dataclass; `None` means "use the default"."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

Mode = Literal["server", "cli"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9695
DEFAULT_PREFIX = "/console"
DEFAULT_MODE: Mode = "server"
STATE_DIR_NAME = "console-proxy"

# Delivery (spool and forwarder).
DEFAULT_SPOOL_MAX_EVENTS = 1_000_000
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SPOOL_MAX_AGE_S = 7 * 24 * 3600.0
DEFAULT_BATCH_MAX_EVENTS = 500
DEFAULT_BATCH_MAX_DELAY_S = 1.0
DEFAULT_UPSTREAM_TIMEOUT_S = 10.0
DEFAULT_RETRY_BASE_S = 0.5
DEFAULT_RETRY_CAP_S = 300.0
DEFAULT_SHUTDOWN_GRACE_S = 10.0
DEFAULT_IDENTITY_REFRESH_S = 3600.0
# The queue: "sqlite" (the spool file under the state directory) or a redis:// URL shared by many processes.
DEFAULT_QUEUE = "sqlite"
DEFAULT_QUEUE_LEASE_S = 30.0
DEFAULT_WORKERS = 1

# Who may write, how much and for how long (docs/design.md, "Origins, hosts and limits").
DEFAULT_CLIENT_RATE = 100.0  # events a second, per client, once its burst is spent
DEFAULT_CLIENT_BURST = 1000  # events
DEFAULT_MAX_CONNECTIONS = 2048
DEFAULT_MAX_WEBSOCKETS = 1024
# Of which one client (its address and origin decision, as for its budget) may hold this many.
DEFAULT_MAX_WEBSOCKETS_PER_CLIENT = 64
DEFAULT_REQUEST_TIMEOUT_S = 10.0  # to send a request's headers and body
DEFAULT_WEBSOCKET_IDLE_S = 300.0
DEFAULT_LOG_FORMAT = "text"

# Reverse-proxy mode (docs/design.md, "Reverse-proxy mode"): how long to wait for Hasura to take a connection; no
# read timeout by default (migrations, pg_dump and large run_sql results take as long as they take).
DEFAULT_HASURA_CONNECT_S = 10.0


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the middleware, the standalone app and the CLI are configured with."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    rules: Path | None = None
    static: Path | None = None
    prefix: str = DEFAULT_PREFIX
    upstream: str | None = None
    # The file of the bearer token sent upstream; the token itself is read by the forwarder, never kept here.
    upstream_token_file: Path | None = None
    state_dir: Path | None = None
    mode: Mode = DEFAULT_MODE
    hasura_endpoint: str | None = None
    admin_secret: str | None = None
    server_uuid: str | None = None
    cli_config: Path | None = None
    enable_telemetry: bool | None = None
    # Events of development builds of the console (topics console_test, console-test-v2): kept apart under
    # the topic console_test, or dropped and counted when this is set.
    drop_test_events: bool = False
    # Keep the raw routes and action names that leave as the unknown tokens in <state-dir>/unknowns.jsonl, for
    # `console-proxy rules suggest` (docs/design.md, "Local suggestions"): never uploaded.
    learn_unknown: bool = False
    # The Hasura lookups ignore proxy variables and .netrc unless this is set (they carry the admin secret).
    identity_trust_env: bool = False

    spool_max_events: int = DEFAULT_SPOOL_MAX_EVENTS
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    spool_max_age_s: float = DEFAULT_SPOOL_MAX_AGE_S
    batch_max_events: int = DEFAULT_BATCH_MAX_EVENTS
    batch_max_delay_s: float = DEFAULT_BATCH_MAX_DELAY_S
    upstream_timeout_s: float = DEFAULT_UPSTREAM_TIMEOUT_S
    retry_base_s: float = DEFAULT_RETRY_BASE_S
    retry_cap_s: float = DEFAULT_RETRY_CAP_S
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    identity_refresh_s: float = DEFAULT_IDENTITY_REFRESH_S
    queue: str = DEFAULT_QUEUE
    queue_lease_s: float = DEFAULT_QUEUE_LEASE_S
    queue_require_aof: bool = False
    workers: int = DEFAULT_WORKERS

    # Host names the standalone server answers besides the bound address and localhost ("*.example.com" too).
    allowed_host: tuple[str, ...] = ()
    # Origins besides the console's own (scheme://host[:port]) whose pages may send events.
    allowed_origin: tuple[str, ...] = ()
    # The proxies whose X-Forwarded-For/-Proto/-Host and Forwarded headers are believed: IP addresses, networks
    # ("10.0.0.0/8"), or "*"; none by default (docs/design.md, "Origins, hosts and limits").
    forwarded_allow_ips: tuple[str, ...] = ()
    client_rate: float = DEFAULT_CLIENT_RATE
    client_burst: int = DEFAULT_CLIENT_BURST
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_websockets: int = DEFAULT_MAX_WEBSOCKETS
    max_websockets_per_client: int = DEFAULT_MAX_WEBSOCKETS_PER_CLIENT
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    websocket_idle_s: float = DEFAULT_WEBSOCKET_IDLE_S
    # The standalone server's log lines: "text" (a UTC time, the level, the message) or "json" (an object a line).
    log_format: str = DEFAULT_LOG_FORMAT

    # HTTPS for the standalone server (uvicorn's names): the certificate (chain) and its key.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # Reverse-proxy mode: the Hasura server relayed to, the gate's own URL as clients reach it, and whether the
    # gate's decision alone sets the console's window.__env.enableTelemetry (else the gate's and Hasura's both).
    hasura_url: str | None = None
    public_url: str | None = None
    gate_decides_console: bool = False
    hasura_connect_s: float = DEFAULT_HASURA_CONNECT_S
    # None: no read timeout (the default).
    hasura_read_s: float | None = None


def resolve_state_dir(state_dir: Path | None, env: Mapping[str, str]) -> Path:
    """`state_dir`, else `$XDG_STATE_HOME/console-proxy`, else `~/.local/state/console-proxy`.

    A relative or empty XDG_STATE_HOME is ignored, as the XDG base directory spec says.
    """
    if state_dir is not None:
        return state_dir
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / STATE_DIR_NAME
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".local" / "state" / STATE_DIR_NAME
