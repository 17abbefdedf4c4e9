"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from playwright.sync_api import Browser, sync_playwright

from console_proxy.rules.route_rules import RouteRules, load_rules

from support import leaks, servers
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.collector import Collector
from support.redis_server import RedisServer, running_redis

# In CI the property tests draw the same cases every run, so a red build is the code's doing, not the dice's;
# on a workstation they keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def default_rules() -> RouteRules:
    """The rules file that ships with console-proxy, loaded once."""
    return load_rules()


@pytest.fixture
def write_rules(tmp_path: Path) -> Callable[[str], Path]:
    """Write a rules file under tmp_path and return its path."""

    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A real recording collector on a free loopback port."""
    with Collector() as c:
        yield c


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server (appendonly yes, appendfsync always) on a free loopback port, stopped afterwards."""
    with running_redis(tmp_path / "redis") as server:
        yield server


_MARKER = leaks.tag_this_session()
# How long what a test started may take to finish exiting after the test, before it counts as left running.
_LEAK_GRACE_S = 5.0


@pytest.fixture(autouse=True)
def nothing_outlives_its_test() -> Iterator[None]:
    """A test (with its function-scoped fixtures: this one is set up first, so torn down last) leaves no process
    of its own running, orphans of a killed parent included, and no thread: a leaked one is killed and the test
    fails here, rather than a later test failing on its traffic or its log lines."""
    processes = leaks.pids()
    threads = set(threading.enumerate())
    spawned = servers.spawned()
    yield
    # What servers.spawn started and the test did not stop (it failed before its stop, say): stopped here.
    stopped = servers.stop_started_since(spawned)
    left = leaks.wait_for_exit(processes, _MARKER, _LEAK_GRACE_S)
    described = [leaks.describe(pid) for pid in left]
    leaks.kill(left)
    stray = leaks.threads_since(threads, _LEAK_GRACE_S)
    problems = [f"process left running (killed now): {args}" for args in stopped]
    problems += [f"process left running (killed now): {d}" for d in described]
    problems += [f"thread left running: {t.name} ({getattr(t, '_target', None)!r})" for t in stray]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def nothing_outlives_the_session() -> Iterator[None]:
    """What a module- or session-scoped fixture started is gone once the session ends."""
    processes = leaks.pids()
    yield
    left = leaks.wait_for_exit(processes, _MARKER, _LEAK_GRACE_S)
    described = [leaks.describe(pid) for pid in left]
    leaks.kill(left)
    if described:
        pytest.fail("left running after the session:\n" + "\n".join(described), pytrace=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright, one per test module."""
    # No skip: with CI=true (and without) a missing browser or an unbuilt console is a failure.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
