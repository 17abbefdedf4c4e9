"""The table of `serve` and `status` flags: for each, the Settings field it sets, its help and default, and its check.
The order is the contract's (docs/design.md, "Command line"), and `--help` lists them in it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from console_proxy.cli import values
from console_proxy.core import settings as defaults


@dataclasses.dataclass(frozen=True)
class Option:
    """One `serve`/`status` flag: the Settings field it sets, its help, and how its value is checked."""

    field: str
    metavar: str
    help: str
    default: str
    check: Callable[[values.Raw], object]
    multiple: bool = False


OPTIONS: tuple[Option, ...] = (
    Option(
        "host",
        "HOST",
        "Address to listen on; also a Host name the server answers.",
        defaults.DEFAULT_HOST,
        values.host_name,
    ),
    Option(
        "port",
        "PORT",
        "Port to listen on (0: any free port).",
        str(defaults.DEFAULT_PORT),
        lambda raw: values.whole_number(raw, 0, 65535),
    ),
    Option(
        "rules",
        "FILE",
        "Rules file: how routes are anonymized, which action names, server counts and CLI commands pass.",
        "the route_rules.yaml shipped with console-proxy",
        values.existing_file,
    ),
    Option(
        "static",
        "DIR",
        "Directory of the console's static files.",
        "the demo console shipped with console-proxy",
        values.existing_directory,
    ),
    Option(
        "prefix",
        "PATH",
        "URL prefix the console is served under and stripped from routes.",
        defaults.DEFAULT_PREFIX,
        values.url_prefix,
    ),
    Option(
        "upstream",
        "URL",
        "Telemetry collector to POST batches to (upstream mode).",
        "none: local mode, events go to <state-dir>/events.jsonl and nothing leaves the machine",
        values.http_url,
    ),
    Option(
        "upstream_token_file",
        "FILE",
        "A file whose first line is the bearer token sent to --upstream (Authorization: Bearer); readable by its"
        " owner only.",
        "none: no Authorization header (a public collector)",
        values.token_file,
    ),
    Option(
        "state_dir",
        "DIR",
        "Directory of the local event file (events.jsonl) or the spool (spool.db); created when missing.",
        "$XDG_STATE_HOME/console-proxy or ~/.local/state/console-proxy",
        values.creatable_directory,
    ),
    Option("mode", "server|cli", "Whose console this is; sent as console_mode.", defaults.DEFAULT_MODE, values.mode),
    Option(
        "hasura_endpoint",
        "URL",
        "Hasura server to ask for its UUID and version (attached to every event).",
        "none",
        values.http_url,
    ),
    Option(
        "admin_secret", "SECRET", "Sent as X-Hasura-Admin-Secret to --hasura-endpoint.", "none", lambda raw: raw.text
    ),
    Option(
        "server_uuid", "UUID", "Server UUID to attach, instead of asking --hasura-endpoint.", "none", values.server_uuid
    ),
    Option(
        "cli_config",
        "FILE",
        "The Hasura CLI's global config (cli mode: its uuid and enable_telemetry).",
        "~/.hasura/config.json, or ~/.hasura/.config.json",
        values.creatable_file,
    ),
    Option(
        "enable_telemetry",
        "BOOL",
        "true/t/yes/y/1 or false/f/no/n/0; decides before every other setting.",
        "not set: HASURA_GRAPHQL_ENABLE_TELEMETRY, the CLI config, DO_NOT_TRACK decide, else on",
        values.boolean,
    ),
    Option(
        "drop_test_events",
        "BOOL",
        "Drop the events of development builds of the console (topics console_test, console-test-v2) instead"
        " of keeping them apart under the topic console_test.",
        "false",
        values.boolean,
    ),
    Option(
        "learn_unknown",
        "BOOL",
        "Keep the raw routes that leave as /UNKNOWN and the action names that leave as UNKNOWN in"
        " <state-dir>/unknowns.jsonl (mode 0600, at most 1 MiB, never uploaded) for `console-proxy rules suggest`.",
        "false",
        values.boolean,
    ),
    Option(
        "identity_trust_env",
        "BOOL",
        "Let the Hasura lookups use HTTP(S)_PROXY, ALL_PROXY and .netrc (they carry the admin secret).",
        "false",
        values.boolean,
    ),
    Option(
        "spool_max_events",
        "N",
        "Most events waiting in the queue (spool or Redis stream); a batch beyond it gets 503.",
        str(defaults.DEFAULT_SPOOL_MAX_EVENTS),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "spool_max_bytes",
        "BYTES",
        "Most bytes of event JSON in the queue, or in local mode in the event file; beyond it 503.",
        str(defaults.DEFAULT_SPOOL_MAX_BYTES),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "spool_max_age_s",
        "SECONDS",
        "An undelivered event older than this (7 days) is removed and counted as expired.",
        str(defaults.DEFAULT_SPOOL_MAX_AGE_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "batch_max_events",
        "N",
        "Most events in one upstream request (each request holds one topic).",
        str(defaults.DEFAULT_BATCH_MAX_EVENTS),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "batch_max_delay_s",
        "SECONDS",
        "Longest an event waits for others to fill an upstream batch.",
        str(defaults.DEFAULT_BATCH_MAX_DELAY_S),
        lambda raw: values.seconds(raw, zero_ok=True),
    ),
    Option(
        "upstream_timeout_s",
        "SECONDS",
        "Deadline of one whole upstream attempt (connect, send, wait, read); then it is retried.",
        str(defaults.DEFAULT_UPSTREAM_TIMEOUT_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "retry_base_s",
        "SECONDS",
        "Backoff base: attempt n waits a random time up to this x 2^n.",
        str(defaults.DEFAULT_RETRY_BASE_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "retry_cap_s",
        "SECONDS",
        "Longest wait between upstream attempts, a collector's Retry-After included.",
        str(defaults.DEFAULT_RETRY_CAP_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "shutdown_grace_s",
        "SECONDS",
        "How long shutdown keeps sending queued events before leaving the rest for the next start.",
        str(defaults.DEFAULT_SHUTDOWN_GRACE_S),
        lambda raw: values.seconds(raw, zero_ok=True),
    ),
    Option(
        "identity_refresh_s",
        "SECONDS",
        "How often --hasura-endpoint is asked again for its UUID and version.",
        str(defaults.DEFAULT_IDENTITY_REFRESH_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "queue",
        "sqlite|URL",
        "Where accepted batches wait for the forwarder: the spool file, or a Redis stream many processes share.",
        defaults.DEFAULT_QUEUE,
        values.queue_url,
    ),
    Option(
        "queue_lease_s",
        "SECONDS",
        "How long a batch a process claimed from the Redis queue may sit idle before another process takes it.",
        str(defaults.DEFAULT_QUEUE_LEASE_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "queue_require_aof",
        "BOOL",
        "Refuse to start unless the Redis queue has appendonly yes.",
        "false",
        values.boolean,
    ),
    Option(
        "workers",
        "N",
        "Server processes sharing the listening socket (more than 1 needs --queue redis://...).",
        str(defaults.DEFAULT_WORKERS),
        lambda raw: values.whole_number(raw, 1, 64),
    ),
    Option(
        "allowed_host",
        "HOST",
        "Another Host name the server answers (repeatable; *.example.com for subdomains).",
        "none: the bound address, localhost, 127.0.0.1, [::1], telemetry.hasura.io and the --public-url host",
        values.host_names,
        multiple=True,
    ),
    Option(
        "allowed_origin",
        "ORIGIN",
        "Another origin whose pages may send events (repeatable; the variable takes a comma-separated list).",
        "none: only the console's own origin, and clients that send no Origin",
        values.origins,
        multiple=True,
    ),
    Option(
        "forwarded_allow_ips",
        "IPS",
        "Proxies whose X-Forwarded-For/-Proto/-Host and Forwarded headers are believed: a comma-separated list of"
        " IP addresses and networks (10.0.0.0/8), or * for any peer. Budgets and the Origin and Host checks then use"
        " the client, scheme and host they give.",
        "none: proxy headers are ignored, the client is the peer",
        values.trusted_proxies,
    ),
    Option(
        "client_rate",
        "EVENTS_PER_S",
        "Events a second one client may send once its burst is spent; beyond it 429.",
        f"{defaults.DEFAULT_CLIENT_RATE:g}",
        values.rate,
    ),
    Option(
        "client_burst",
        "EVENTS",
        "Events one client may send at once before --client-rate applies; beyond it 429.",
        str(defaults.DEFAULT_CLIENT_BURST),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "max_connections",
        "N",
        "Most open connections and WebSockets together; beyond it 503 at once. Capped within the open-files limit"
        " (said at start).",
        str(defaults.DEFAULT_MAX_CONNECTIONS),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "max_websockets",
        "N",
        "Most open telemetry WebSockets (GraphQL ones relayed to Hasura are not counted); beyond it the handshake is"
        " refused (close 1013).",
        str(defaults.DEFAULT_MAX_WEBSOCKETS),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "max_websockets_per_client",
        "N",
        "Most open WebSockets of one client (its address, every loopback address one, and origin); beyond it the"
        " handshake is refused (close 1013).",
        str(defaults.DEFAULT_MAX_WEBSOCKETS_PER_CLIENT),
        lambda raw: values.whole_number(raw, 1),
    ),
    Option(
        "request_timeout_s",
        "SECONDS",
        "Longest a client may take to send a request's headers and body.",
        str(defaults.DEFAULT_REQUEST_TIMEOUT_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "websocket_idle_s",
        "SECONDS",
        "A telemetry WebSocket that sends nothing for this long is closed (1001); relayed GraphQL ones never are.",
        str(defaults.DEFAULT_WEBSOCKET_IDLE_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "log_format",
        "text|json",
        "Log lines as text (UTC time, level, message) or as one JSON object a line.",
        defaults.DEFAULT_LOG_FORMAT,
        values.log_format,
    ),
    Option(
        "ssl_certfile",
        "FILE",
        "Serve HTTPS with this certificate (PEM, its chain after it), as uvicorn's --ssl-certfile.",
        "none: plain HTTP",
        values.existing_file,
    ),
    Option(
        "ssl_keyfile",
        "FILE",
        "The certificate's private key (PEM), when --ssl-certfile does not hold it.",
        "none",
        values.existing_file,
    ),
    Option(
        "hasura_url",
        "URL",
        "Reverse-proxy mode: relay every request but the gate's own to this Hasura server, published in its place.",
        "none: serve the console's static files (--static)",
        values.http_url,
    ),
    Option(
        "public_url",
        "URL",
        "The gate's URL as browsers reach it (behind TLS or another proxy): put in console pages and scripts, and a"
        " Host name the server answers.",
        "none: the scheme and Host of each request",
        values.public_url,
    ),
    Option(
        "gate_decides_console",
        "BOOL",
        "Reverse-proxy mode: the gate's decision alone sets the console's window.__env.enableTelemetry (for a"
        " Hasura run with HASURA_GRAPHQL_ENABLE_TELEMETRY=false to stop its own egress).",
        "false: on only when the gate's decision and Hasura's page both say on",
        values.boolean,
    ),
    Option(
        "hasura_connect_s",
        "SECONDS",
        "Reverse-proxy mode: longest wait for Hasura to take a connection; then 504.",
        str(defaults.DEFAULT_HASURA_CONNECT_S),
        lambda raw: values.seconds(raw, zero_ok=False),
    ),
    Option(
        "hasura_read_s",
        "SECONDS",
        "Reverse-proxy mode: longest wait for each read from Hasura, then 504 (0: none; migrations, pg_dump and"
        " large run_sql results take their time).",
        "0: none",
        lambda raw: values.seconds(raw, zero_ok=True) or None,
    ),
)
