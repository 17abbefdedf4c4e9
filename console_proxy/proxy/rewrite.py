"""What the relay changes in the console's pages and scripts (pure: bytes in, bytes out).

Two changes, and nothing else is touched (docs/design.md, "Reverse-proxy mode"):

- A console page (HTML) gets the page script (`page_script.py`) first in its `<head>`, once.
- A script (JavaScript) that holds the console's telemetry socket URL (`wss://telemetry.hasura.io/v1/ws`) gets the
  gate's own socket URL in its place: for the consoles whose page is not the gate's (the CLI's, loading its scripts
  from the server with `--use-server-assets`).

A body is decoded (identity, gzip, deflate: what Hasura and its CDN send), changed and encoded again the same way;
a body in another coding, over MAX_DECODED_BYTES decoded, or not decodable is left as it came and counted.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import zlib
from urllib.parse import urlsplit

from console_proxy.hasura.endpoints import CONSOLE_SOCKET_URL
from console_proxy.sources import WS_PATH

# A console bundle is a few MB; more than this, decoded, is not a console's.
MAX_DECODED_BYTES = 64 * 1024 * 1024
# And more than this as it travels is relayed untouched without waiting for its end.
MAX_BUFFERED_BYTES = 32 * 1024 * 1024

PAGE = "page"
SCRIPT = "script"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_SCRIPT_TYPES = frozenset(
    {
        "application/javascript",
        "text/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
    }
)
_IDENTITY = frozenset({"", "identity"})
_GZIP = frozenset({"gzip", "x-gzip"})
_DEFLATE = "deflate"
# The literal as it is written in the bundles, and JSON-escaped (`\/`) as a bundler may embed it in a string.
_LITERAL = CONSOLE_SOCKET_URL.encode()
_LITERAL_ESCAPED = _LITERAL.replace(b"/", b"\\/")
# Where the page script goes: after the opening <head>, else after <html>, else after the doctype.
_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
_HTML = re.compile(rb"<html(?:\s[^>]*)?>", re.IGNORECASE)
_DOCTYPE = re.compile(rb"\A\s*<!doctype[^>]*>", re.IGNORECASE)
# A Host (name or [v6] address, and a port) that may be written into a script: nothing a string could break out of.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\])(?::[0-9]{{1,5}})?")
# And a path of --public-url: no quote of any kind, nothing that ends an element or opens a template.
_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$&+,;=:@%-]*)*")


class Untouched(Exception):  # noqa: N818 -- not an error: the body goes as it came
    """A body that is relayed as it came; `reason` is its metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def kind(content_type: bytes | None) -> str | None:
    """PAGE for an HTML response, SCRIPT for JavaScript, None for anything else (passed through as it is)."""
    if content_type is None:
        return None
    media = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
    if media in _HTML_TYPES:
        return PAGE
    return SCRIPT if media in _SCRIPT_TYPES else None


def host_ok(host: str) -> bool:
    """Whether a Host header value may be written into a script (a name or address and a port, nothing else)."""
    return _HOST.fullmatch(host) is not None


def gate_socket_url(public_url: str | None, *, scheme: str, host: str) -> str:
    """The gate's console socket as a client reaches it: from `public_url` (its scheme, host and path) when the
    operator gave one, else from the request's scheme and Host (checked with `host_ok` first)."""
    if public_url is not None:
        parts = urlsplit(public_url)
        ws = "wss" if parts.scheme == "https" else "ws"
        return f"{ws}://{parts.netloc}{parts.path.rstrip('/')}{WS_PATH}"
    if not host_ok(host):
        raise ValueError("not a host name")
    return f"{'wss' if scheme in ('https', 'wss') else 'ws'}://{host}{WS_PATH}"


def public_url_ok(url: str) -> bool:
    """Whether `--public-url` can be written into a page and a script as it is."""
    parts = urlsplit(url)
    return (
        parts.scheme in ("http", "https")
        and host_ok(parts.netloc)
        and _PATH.fullmatch(parts.path) is not None
        and not parts.query
        and not parts.fragment
    )


@dataclasses.dataclass(frozen=True)
class Rewritten:
    """A changed body, in the coding it came in, and how many changes were made."""

    body: bytes
    changes: int


def decode(body: bytes, coding: str) -> bytes:
    """`body` without its content coding; Untouched for a coding not handled, a bomb, or a broken body."""
    coding = coding.strip().lower()
    try:
        if coding in _IDENTITY:
            data = body
        elif coding in _GZIP:
            data = _gunzip(body)
        elif coding == _DEFLATE:
            data = _inflate(body)
        else:
            raise Untouched("coding")
    except zlib.error:
        raise Untouched("undecodable") from None
    if len(data) > MAX_DECODED_BYTES:
        raise Untouched("too_large")
    return data


def encode(data: bytes, coding: str) -> bytes:
    """`data` in the content coding `decode` took off."""
    coding = coding.strip().lower()
    if coding in _GZIP:
        return gzip.compress(data, compresslevel=6, mtime=0)
    if coding == _DEFLATE:
        return zlib.compress(data, 6)
    return data


def _gunzip(body: bytes) -> bytes:
    # Member by member (a gzip file may hold several), never more than the limit decoded.
    out: list[bytes] = []
    size = 0
    data = body
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        chunk = inflater.decompress(data, MAX_DECODED_BYTES - size + 1)
        size += len(chunk)
        out.append(chunk)
        if size > MAX_DECODED_BYTES or inflater.unconsumed_tail:
            raise Untouched("too_large")
        if not inflater.eof:
            raise Untouched("undecodable")
        data = inflater.unused_data
    return b"".join(out)


def _inflate(body: bytes) -> bytes:
    # HTTP's "deflate" is zlib's format; some servers send raw deflate under that name.
    for wbits in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            data = inflater.decompress(body, MAX_DECODED_BYTES + 1)
        except zlib.error:
            continue
        if len(data) > MAX_DECODED_BYTES or inflater.unconsumed_tail:
            raise Untouched("too_large")
        if inflater.eof:
            return data
    raise Untouched("undecodable")


def replace_literal(script: bytes, socket_url: str) -> Rewritten:
    """`script` with every console telemetry socket URL (plain or `\\/`-escaped) replaced by `socket_url`."""
    url = socket_url.encode()
    count = script.count(_LITERAL) + script.count(_LITERAL_ESCAPED)
    if not count:
        return Rewritten(script, 0)
    return Rewritten(script.replace(_LITERAL, url).replace(_LITERAL_ESCAPED, url.replace(b"/", b"\\/")), count)


def inject(page: bytes, script: bytes, marker: bytes) -> Rewritten:
    """`page` with `script` (a whole `<script>` element carrying `marker`) first in its head; a page that already
    holds the marker is left as it is, so the script is there exactly once."""
    if marker in page:
        return Rewritten(page, 0)
    for pattern in (_HEAD, _HTML, _DOCTYPE):
        found = pattern.search(page)
        if found is not None:
            return Rewritten(page[: found.end()] + script + page[found.end() :], 1)
    return Rewritten(script + page, 1)
