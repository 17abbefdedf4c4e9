from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from console_proxy.core.errors import SettingsError
from console_proxy.core.events import Identity, valid_uuid
from console_proxy.core.settings import Settings
from console_proxy.hasura.cli_config import cli_config_path, read_cli_config
from console_proxy.hasura.identity import IdentityProvider

from support.fake_hasura import SERVER_UUID, VERSION, FakeHasura, closed_port_url, fake_hasura

pytestmark = pytest.mark.anyio

GIVEN_UUID = "11111111-2222-4333-8444-555555555555"
CLI_UUID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
# Generous for a fake server that answers at once, so a loaded machine does not make it time out; the slow
# tests use SLOW_TIMEOUT_S against a server that would take far longer.
TIMEOUT_S = 5.0
SLOW_TIMEOUT_S = 0.3
# A guard against a hang, not a timing assertion: a lookup is bounded by TIMEOUT_S, far below this.
HANG_GUARD_S = 20


def provider(endpoint: str | None, tmp_path: Path, timeout_s: float = TIMEOUT_S, **settings: Any) -> IdentityProvider:
    return IdentityProvider(Settings(hasura_endpoint=endpoint, **settings), home=tmp_path, timeout_s=timeout_s)


async def refresh(identity: IdentityProvider) -> None:
    with anyio.fail_after(HANG_GUARD_S):
        await identity.refresh()


# --- server mode against a real fake Hasura ------------------------------------------------


async def test_server_mode_asks_hasura(tmp_path: Path) -> None:
    with fake_hasura(FakeHasura(admin_secret="s3cret")) as (fake, url):
        identity = provider(url, tmp_path, admin_secret="s3cret")
        assert identity.current == Identity(None, None, None)
        await refresh(identity)
        assert identity.current == Identity(server_uuid=SERVER_UUID, cli_uuid=None, server_version=VERSION)
        [metadata] = fake.requests("/v1/metadata")
        assert (metadata.method, metadata.body) == ("POST", {"type": "get_catalog_state", "args": {}})
        assert metadata.headers["x-hasura-admin-secret"] == "s3cret"
        assert metadata.headers["content-type"] == "application/json"
        [version] = fake.requests("/v1/version")
        assert version.method == "GET"
        assert "x-hasura-admin-secret" not in version.headers


async def test_without_admin_secret_no_header_is_sent(tmp_path: Path) -> None:
    with fake_hasura() as (fake, url):
        identity = provider(url + "/", tmp_path)
        await refresh(identity)
        assert identity.current == Identity(SERVER_UUID, None, VERSION)
        assert all("x-hasura-admin-secret" not in seen.headers for seen in fake.seen)
        assert sorted(seen.path for seen in fake.seen) == ["/v1/metadata", "/v1/version"]


async def test_wrong_admin_secret_leaves_the_uuid_unknown(tmp_path: Path) -> None:
    with fake_hasura(FakeHasura(admin_secret="right")) as (_, url):
        identity = provider(url, tmp_path, admin_secret="wrong")
        await refresh(identity)
        assert identity.current == Identity(None, None, VERSION)


async def test_server_uuid_flag_wins_and_is_not_asked(tmp_path: Path) -> None:
    with fake_hasura() as (fake, url):
        identity = provider(url, tmp_path, server_uuid=GIVEN_UUID.upper())
        assert identity.current == Identity(GIVEN_UUID, None, None)
        await refresh(identity)
        assert identity.current == Identity(GIVEN_UUID, None, VERSION)
        assert fake.requests("/v1/metadata") == []


async def test_no_endpoint_asks_nothing(tmp_path: Path) -> None:
    identity = provider(None, tmp_path, server_uuid=GIVEN_UUID)
    await refresh(identity)
    assert identity.current == Identity(GIVEN_UUID, None, None)


@pytest.mark.parametrize(
    ("fake", "expected"),
    [
        (FakeHasura(server_uuid="not-a-uuid", version="banana"), Identity(None, None, None)),
        (FakeHasura(server_uuid=SERVER_UUID.upper(), version="v2.40.0-ce"), Identity(SERVER_UUID, None, "v2.40.0-ce")),
        (FakeHasura(server_uuid="{" + SERVER_UUID + "}", version="v2.40.0\n"), Identity(None, None, None)),
        (FakeHasura(server_uuid=SERVER_UUID.replace("-", ""), version="2.40"), Identity(None, None, None)),
        (FakeHasura(server_uuid=7, version=240), Identity(None, None, None)),
        (FakeHasura(server_uuid=None, version=None), Identity(None, None, None)),
        (FakeHasura(server_uuid=[SERVER_UUID], version={"v": VERSION}), Identity(None, None, None)),
        (FakeHasura(server_uuid=SERVER_UUID + "<b>", version=VERSION + "-" + "x" * 40), Identity(None, None, None)),
    ],
)
async def test_answers_are_validated_strictly(tmp_path: Path, fake: FakeHasura, expected: Identity) -> None:
    with fake_hasura(fake) as (_, url):
        identity = provider(url, tmp_path)
        await refresh(identity)
        assert identity.current == expected


@pytest.mark.parametrize(
    ("fake", "problem"),
    [
        (FakeHasura(status=500), "HTTP 500"),
        (FakeHasura(status=404), "HTTP 404"),
        (FakeHasura(raw_body=b"<html>not json</html>"), "the answer is not JSON"),
        (FakeHasura(raw_body=b"[" * 100000 + b"]" * 100000), "response over 65536 bytes, ignored"),
        (FakeHasura(raw_body=b"[" * 30000 + b"]" * 30000), "the answer is not JSON"),  # too deep for json
        (FakeHasura(raw_body=b""), "the answer is not JSON"),
    ],
)
async def test_a_failed_lookup_keeps_the_previous_values(tmp_path: Path, fake: FakeHasura, problem: str) -> None:
    with fake_hasura() as (good, url):
        identity = provider(url, tmp_path)
        await refresh(identity)
        assert identity.current == Identity(SERVER_UUID, None, VERSION)
        assert identity.problems == []
        for field in ("status", "raw_body"):
            setattr(good, field, getattr(fake, field))
        await refresh(identity)
        assert identity.current == Identity(SERVER_UUID, None, VERSION)
        assert sorted(identity.problems) == [f"/v1/metadata: {problem}", f"/v1/version: {problem}"]
    with fake_hasura(fake) as (_, other_url):
        fresh = provider(other_url, tmp_path)
        await refresh(fresh)
        assert fresh.current == Identity(None, None, None)


async def test_hasura_down_leaves_unknown_without_hanging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    identity = provider(closed_port_url(), tmp_path, admin_secret="do-not-log-me")
    with caplog.at_level(logging.WARNING, logger="console_proxy"):
        await refresh(identity)
    assert identity.current == Identity(None, None, None)
    # This test's own lines: a line another thread logs meanwhile is not this lookup's doing.
    mine = [record for record in caplog.records if record.thread == threading.get_ident()]
    assert sorted(record.getMessage() for record in mine) == [
        "identity lookup /v1/metadata failed: ConnectError",
        "identity lookup /v1/version failed: ConnectError",
    ]
    assert "do-not-log-me" not in caplog.text
    assert sorted(identity.problems) == ["/v1/metadata failed: ConnectError", "/v1/version failed: ConnectError"]


async def test_hasura_going_down_keeps_what_was_known(tmp_path: Path) -> None:
    with fake_hasura() as (_, url):
        identity = provider(url, tmp_path)
        await refresh(identity)
    await refresh(identity)
    assert identity.current == Identity(SERVER_UUID, None, VERSION)


@pytest.mark.parametrize("fake", [FakeHasura(delay_s=30), FakeHasura(stall_body_s=30)])
async def test_slow_hasura_gives_up_at_the_timeout(tmp_path: Path, fake: FakeHasura) -> None:
    with fake_hasura(fake) as (_, url):
        identity = provider(url, tmp_path, timeout_s=SLOW_TIMEOUT_S)
        await refresh(identity)
        assert identity.current == Identity(None, None, None)
        assert len(fake.seen) == 2
        assert identity.problems == [f"timed out after {SLOW_TIMEOUT_S:g}s"]


async def test_current_answers_while_a_lookup_is_pending(tmp_path: Path) -> None:
    with fake_hasura(FakeHasura(delay_s=30)) as (fake, url):
        identity = IdentityProvider(Settings(hasura_endpoint=url, server_uuid=GIVEN_UUID), timeout_s=HANG_GUARD_S)
        with anyio.fail_after(HANG_GUARD_S):
            async with anyio.create_task_group() as group:
                group.start_soon(identity.refresh)
                while not fake.seen:
                    await anyio.sleep(0.01)
                assert identity.current == Identity(GIVEN_UUID, None, None)
                group.cancel_scope.cancel()
        assert identity.current == Identity(GIVEN_UUID, None, None)


async def test_run_refreshes_periodically_until_cancelled(tmp_path: Path) -> None:
    with fake_hasura() as (fake, url):
        identity = provider(url, tmp_path, identity_refresh_s=0.01)
        with anyio.fail_after(HANG_GUARD_S):
            async with anyio.create_task_group() as group:
                group.start_soon(identity.run)
                while len(fake.requests("/v1/version")) < 3:
                    await anyio.sleep(0.01)
                fake.version = "v2.41.0"
                seen = len(fake.requests("/v1/version"))
                while len(fake.requests("/v1/version")) < seen + 2:
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()
        assert identity.current == Identity(SERVER_UUID, None, "v2.41.0")


async def test_init_does_no_io(tmp_path: Path) -> None:
    with fake_hasura() as (fake, url):
        home = tmp_path / "home"
        IdentityProvider(Settings(mode="cli", hasura_endpoint=url), home=home)
        await anyio.sleep(0.05)
        assert fake.seen == []
        assert not home.exists()


# --- cli mode: the CLI's global config ----------------------------------------------------


def test_cli_config_is_created_with_a_uuid4_when_missing(tmp_path: Path) -> None:
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    assert identity.load_cli_identity() == {"uuid": identity.current.cli_uuid}
    path = tmp_path / ".hasura" / "config.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    cli_uuid = document["uuid"]
    assert document == {"uuid": cli_uuid}
    assert valid_uuid(cli_uuid) == cli_uuid and cli_uuid[14] == "4"
    assert identity.current == Identity(None, cli_uuid, None)
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]
    again = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    again.load_cli_identity()
    assert again.current.cli_uuid == cli_uuid


def test_cli_config_is_read_when_present(tmp_path: Path) -> None:
    path = tmp_path / ".hasura" / "config.json"
    path.parent.mkdir()
    text = json.dumps({"uuid": CLI_UUID.upper(), "enable_telemetry": True, "show_update_notification": False})
    path.write_text(text, encoding="utf-8")
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    config = identity.load_cli_identity()
    assert config == json.loads(text)
    assert identity.current == Identity(None, CLI_UUID, None)
    assert path.read_text(encoding="utf-8") == text


def test_dot_config_is_read_when_config_json_is_absent(tmp_path: Path) -> None:
    path = tmp_path / ".hasura" / ".config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"uuid": CLI_UUID}), encoding="utf-8")
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    identity.load_cli_identity()
    assert identity.current.cli_uuid == CLI_UUID
    assert identity.cli_config_path == path
    assert sorted(p.name for p in path.parent.iterdir()) == [".config.json"]


def test_config_json_wins_over_dot_config(tmp_path: Path) -> None:
    (tmp_path / ".hasura").mkdir()
    (tmp_path / ".hasura" / ".config.json").write_text(json.dumps({"uuid": GIVEN_UUID}), encoding="utf-8")
    (tmp_path / ".hasura" / "config.json").write_text(json.dumps({"uuid": CLI_UUID}), encoding="utf-8")
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    identity.load_cli_identity()
    assert identity.current.cli_uuid == CLI_UUID


def test_cli_config_flag_overrides_home(tmp_path: Path) -> None:
    (tmp_path / ".hasura").mkdir()
    (tmp_path / ".hasura" / "config.json").write_text(json.dumps({"uuid": GIVEN_UUID}), encoding="utf-8")
    own = tmp_path / "deep" / "dir" / "cli.json"
    identity = IdentityProvider(Settings(mode="cli", cli_config=own), home=tmp_path)
    identity.load_cli_identity()
    assert identity.current.cli_uuid == json.loads(own.read_text(encoding="utf-8"))["uuid"]
    assert identity.current.cli_uuid != GIVEN_UUID


@pytest.mark.parametrize("bad_uuid", [None, "", "not-a-uuid", 7])
def test_a_missing_or_invalid_uuid_is_added_keeping_other_keys(tmp_path: Path, bad_uuid: object) -> None:
    path = tmp_path / ".hasura" / "config.json"
    path.parent.mkdir()
    document: dict[str, Any] = {"enable_telemetry": False, "show_update_notification": True}
    if bad_uuid is not None:
        document["uuid"] = bad_uuid
    path.write_text(json.dumps(document), encoding="utf-8")
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    identity.load_cli_identity()
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == {"enable_telemetry": False, "show_update_notification": True, "uuid": identity.current.cli_uuid}
    assert valid_uuid(identity.current.cli_uuid) is not None


def test_nothing_is_created_when_asked_not_to(tmp_path: Path) -> None:
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    assert identity.load_cli_identity(create=False) == {}
    assert identity.current == Identity(None, None, None)
    assert list(tmp_path.iterdir()) == []


def test_server_mode_does_not_touch_the_cli_config(tmp_path: Path) -> None:
    identity = IdentityProvider(Settings(mode="server"), home=tmp_path)
    assert identity.load_cli_identity() == {}
    assert identity.current == Identity(None, None, None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"uuid"', ""])
def test_a_broken_cli_config_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / ".hasura" / "config.json"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    identity = IdentityProvider(Settings(mode="cli"), home=tmp_path)
    with pytest.raises(SettingsError) as caught:
        identity.load_cli_identity()
    assert str(caught.value) == f"The CLI config {path} is not a JSON object; expected the Hasura CLI's global config."
    assert path.read_text(encoding="utf-8") == text


def test_read_cli_config(tmp_path: Path) -> None:
    assert read_cli_config(tmp_path / "missing.json") == {}
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe")
    with pytest.raises(SettingsError) as caught:
        read_cli_config(tmp_path / "bin.json")
    assert str(caught.value) == (
        f"The CLI config {tmp_path / 'bin.json'} cannot be read (not UTF-8 text); expected a readable JSON file."
    )
    with pytest.raises(SettingsError) as caught:
        read_cli_config(tmp_path)
    assert str(caught.value) == (
        f"The CLI config {tmp_path} cannot be read (Is a directory); expected a readable JSON file."
    )


def test_cli_config_path(tmp_path: Path) -> None:
    assert cli_config_path(Settings(), home=tmp_path) == tmp_path / ".hasura" / "config.json"
    assert cli_config_path(Settings(cli_config=tmp_path / "x.json"), home=tmp_path) == tmp_path / "x.json"


async def test_cli_mode_with_an_endpoint_attaches_both(tmp_path: Path) -> None:
    with fake_hasura() as (_, url):
        identity = IdentityProvider(Settings(mode="cli", hasura_endpoint=url), home=tmp_path, timeout_s=TIMEOUT_S)
        identity.load_cli_identity()
        await refresh(identity)
        cli_uuid = identity.current.cli_uuid
        assert cli_uuid is not None
        assert identity.current == Identity(SERVER_UUID, cli_uuid, VERSION)


# --- the environment's proxy and .netrc -----------------------------------------------------


class _RecordingProxy(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, dict[str, str]]]] = []

    def _record(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(502)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._record()

    def do_POST(self) -> None:
        self._record()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("trust_env", [False, True])
async def test_the_admin_secret_never_reaches_the_environments_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trust_env: bool
) -> None:
    _RecordingProxy.seen = []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy_url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        (tmp_path / ".netrc").write_text("default login netrc-user password netrc-password\n")
        monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
        with fake_hasura(FakeHasura(admin_secret="s3cret")) as (fake, url):
            identity = provider(url, tmp_path, admin_secret="s3cret", identity_trust_env=trust_env)
            await refresh(identity)
            direct = [seen.headers for seen in fake.seen]
    finally:
        proxy.shutdown()
        proxy.server_close()
    if trust_env:  # the operator opted in: the proxy sees the lookups (so this test can see a leak)
        assert any(headers.get("x-hasura-admin-secret") == "s3cret" for _, headers in _RecordingProxy.seen)
        assert identity.current == Identity(None, None, None)
    else:
        assert _RecordingProxy.seen == []
        assert identity.current == Identity(SERVER_UUID, None, VERSION)
        assert all("authorization" not in headers for headers in direct)


async def test_a_failed_lookup_is_tried_again_from_seconds_doubling_up_to_the_refresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 6:
            raise anyio.get_cancelled_exc_class()
        await anyio.sleep(0)

    identity = IdentityProvider(
        Settings(hasura_endpoint=closed_port_url(), identity_refresh_s=20.0),
        home=tmp_path,
        timeout_s=TIMEOUT_S,
        sleep=sleep,
    )
    with anyio.fail_after(HANG_GUARD_S), pytest.raises(anyio.get_cancelled_exc_class()):
        await identity.run()
    assert waits == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    nexts = [r.getMessage() for r in caplog.records if "next try" in r.getMessage()]
    assert nexts[:3] == [f"identity lookup failed; next try in {w:g}s" for w in (2, 4, 8)]


async def test_a_lookup_that_answers_waits_the_whole_refresh_and_says_where_the_id_came_from(tmp_path: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise anyio.get_cancelled_exc_class()

    with fake_hasura() as (_, url):
        identity = IdentityProvider(Settings(hasura_endpoint=url), home=tmp_path, timeout_s=TIMEOUT_S, sleep=sleep)
        with anyio.fail_after(HANG_GUARD_S), pytest.raises(anyio.get_cancelled_exc_class()):
            await identity.run()
    assert waits == [3600.0]
    assert identity.sources() == {"server_uuid_from": f"the Hasura server at {url}", "cli_uuid_from": None}


def test_cli_mode_says_when_it_creates_the_cli_config(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="console_proxy")
    identity = provider(None, tmp_path, mode="cli")
    identity.load_cli_identity()
    path = tmp_path / ".hasura" / "config.json"
    assert [r.getMessage() for r in caplog.records] == [
        f"created the Hasura CLI's config file {path} with a new uuid, as the CLI itself would"
    ]
    assert identity.sources() == {"server_uuid_from": None, "cli_uuid_from": str(path)}
    caplog.clear()
    provider(None, tmp_path, mode="cli").load_cli_identity()
    assert caplog.records == []  # found, not created: nothing to say
