"""The changes to console pages and scripts: the page script once in the head, the telemetry URL out of scripts."""

from __future__ import annotations

import gzip
import zlib

import pytest

from console_proxy.proxy import rewrite
from console_proxy.proxy.page_script import MARKER, page_script

LITERAL = b"wss://telemetry.hasura.io/v1/ws"
GATE = "ws://gate.example:8080/_telemetry/v1/ws"
SCRIPT = b"<script data-console-proxy>x()</script>"


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        (b"text/html; charset=utf-8", "page"),
        (b"TEXT/HTML", "page"),
        (b"application/javascript", "script"),
        (b"text/javascript; charset=utf-8", "script"),
        (b"application/json", None),
        (b"text/css", None),
        (None, None),
    ],
)
def test_kind(content_type: bytes | None, kind: str | None) -> None:
    assert rewrite.kind(content_type) == kind


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (b"<html><head><title>t</title></head></html>", b"<html><head>" + SCRIPT + b"<title>t</title></head></html>"),
        (b'<html lang="en-us">\n  <HEAD class="a">\n', b'<html lang="en-us">\n  <HEAD class="a">' + SCRIPT + b"\n"),
        (b"<html><header></header></html>", b"<html>" + SCRIPT + b"<header></header></html>"),
        (b"<!DOCTYPE html><p>bare</p>", b"<!DOCTYPE html>" + SCRIPT + b"<p>bare</p>"),
        (b"<p>no frame at all</p>", SCRIPT + b"<p>no frame at all</p>"),
    ],
)
def test_the_page_script_goes_first_in_the_head(page: bytes, expected: bytes) -> None:
    assert rewrite.inject(page, SCRIPT, MARKER) == rewrite.Rewritten(expected, 1)


def test_a_page_that_has_the_script_is_left_as_it_is() -> None:
    page = b"<html><head>" + SCRIPT + b"</head></html>"
    assert rewrite.inject(page, SCRIPT, MARKER) == rewrite.Rewritten(page, 0)


def test_the_literal_is_replaced_plain_and_escaped_and_nothing_else_changes() -> None:
    script = (
        b"a={telemetryServer:'" + LITERAL + b"'};b=\"wss:\\/\\/telemetry.hasura.io\\/v1\\/ws\";c='wss://other/v1/ws'"
    )
    assert rewrite.replace_literal(script, GATE) == rewrite.Rewritten(
        b"a={telemetryServer:'" + GATE.encode() + b'\'};b="ws:\\/\\/gate.example:8080\\/_telemetry\\/v1\\/ws";'
        b"c='wss://other/v1/ws'",
        2,
    )
    assert rewrite.replace_literal(b"no literal", GATE) == rewrite.Rewritten(b"no literal", 0)


@pytest.mark.parametrize("coding", ["", "identity", "gzip", "x-gzip", "deflate"])
def test_codings_round_trip(coding: str) -> None:
    data = b"var x = 1;\n" * 1000
    assert rewrite.decode(rewrite.encode(data, coding), coding) == data


def test_raw_deflate_and_multi_member_gzip_are_read() -> None:
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw.compress(b"raw deflate") + raw.flush()
    assert rewrite.decode(body, "deflate") == b"raw deflate"
    assert rewrite.decode(gzip.compress(b"one ") + gzip.compress(b"two"), "gzip") == b"one two"


@pytest.mark.parametrize(
    ("body", "coding", "reason"),
    [
        (b"whatever", "br", "coding"),
        (b"whatever", "gzip, gzip", "coding"),
        (b"not gzip at all", "gzip", "undecodable"),
        (gzip.compress(b"cut short")[:-12], "gzip", "undecodable"),
        (b"not deflate", "deflate", "undecodable"),
        (gzip.compress(b"\0" * (rewrite.MAX_DECODED_BYTES + 1)), "gzip", "too_large"),
        (zlib.compress(b"\0" * (rewrite.MAX_DECODED_BYTES + 1)), "deflate", "too_large"),
    ],
)
def test_a_body_that_cannot_be_read_is_left_untouched(body: bytes, coding: str, reason: str) -> None:
    with pytest.raises(rewrite.Untouched) as caught:
        rewrite.decode(body, coding)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("public", "scheme", "host", "url"),
    [
        (None, "http", "localhost:8080", "ws://localhost:8080/_telemetry/v1/ws"),
        (None, "https", "hasura.example.com", "wss://hasura.example.com/_telemetry/v1/ws"),
        (None, "http", "[::1]:9695", "ws://[::1]:9695/_telemetry/v1/ws"),
        ("https://example.com/hasura", "http", "ignored", "wss://example.com/hasura/_telemetry/v1/ws"),
        ("http://10.0.0.1:8080", "https", "ignored", "ws://10.0.0.1:8080/_telemetry/v1/ws"),
    ],
)
def test_the_gates_socket_url(public: str | None, scheme: str, host: str, url: str) -> None:
    assert rewrite.gate_socket_url(public, scheme=scheme, host=host) == url


@pytest.mark.parametrize(
    "host", ["", "gate'+alert(1)+'", 'gate"', "gate:80x", "gate/evil", "gate\\", "a b", "gate:123456", "[zz]"]
)
def test_a_host_that_could_break_out_of_a_string_is_refused(host: str) -> None:
    assert not rewrite.host_ok(host)
    with pytest.raises(ValueError):
        rewrite.gate_socket_url(None, scheme="http", host=host)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hasura.example.com", True),
        ("http://10.0.0.1:8080/api/hasura", True),
        ("https://hasura.example.com/a?b=c", False),
        ("https://hasura.example.com/#x", False),
        ("https://hasura.example.com/a'b", False),
        ("https://hasura.example.com/a`b", False),
        ('https://hasura.example.com/a"b', False),
        ("https://hasura.example.com/</script>", False),
        ("ftp://hasura.example.com", False),
    ],
)
def test_public_url_ok(url: str, ok: bool) -> None:
    assert rewrite.public_url_ok(url) is ok


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("gate_url", [None, "wss://example.com/hasura/_telemetry/v1/ws"])
def test_the_page_script_holds_the_decision_and_never_the_literal(on: bool, gate_url: str | None) -> None:
    script = page_script(on=on, gate_only=False, gate_url=gate_url)
    assert script.startswith(b"<script data-console-proxy>") and script.endswith(b"</script>")
    assert script.count(b"</script>") == 1
    assert LITERAL not in script
    assert f"var on = {'true' if on else 'false'}, gateOnly = false".encode() in script
    assert (b'"' + gate_url.encode() + b'"' if gate_url else b"var gate = null ||") in script
